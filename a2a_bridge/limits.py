"""Limits at the A2A door: a body cap and a per-caller rate, both answered in JSON-RPC's shape.

Plain ASGI middleware inside the A2A sub-app, so they act before any body is parsed or any handler
runs, and only on A2A traffic (the sub-app sees nothing else).
"""

from __future__ import annotations

import bisect
import json
import math
import re
import time
from collections.abc import Callable
from typing import Any

import structlog

from a2a_bridge.asgi import (
    BODY_DEADLINE_SECONDS,
    ASGIApp,
    BodyTooLarge,
    BodyTooSlow,
    Receive,
    Scope,
    Send,
    header,
    read_capped_body,
    replaying,
    send_json,
)
from a2a_bridge.json_limits import UnsafeJSON, check_json_bytes

log = structlog.get_logger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
RATE_LIMITED_CODE = -32000
CONTENT_TYPE_NOT_SUPPORTED = -32005
JSON_MEDIA_TYPES = ("application/json",)


def jsonrpc_error(code: int, message: str, request_id: Any = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


# The id of a request whose body is not read in full: at the start, as JSON-RPC clients write it.
_LEADING_ID = re.compile(
    rb'^\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*("(?:[^"\\]|\\.){0,200}"|-?\d{1,15})\s*[,}]'
)


def request_id_of(body: bytes) -> str | int | None:
    """The JSON-RPC id of a request body, or of its first bytes, when it can be read (for an error
    answered early)."""
    try:
        check_json_bytes(body)
        request = json.loads(body)
    except ValueError:
        leading = _LEADING_ID.match(body)
        if leading is None:
            return None
        try:
            request = {"id": json.loads(leading.group(1))}
        except ValueError:
            return None
    request_id = request.get("id") if isinstance(request, dict) else None
    if isinstance(request_id, bool) or not isinstance(request_id, str | int):
        return None
    return request_id if isinstance(request_id, str) or abs(request_id) < 2**53 else None


class A2ABodyLimit:
    """415 for a POST whose body is not declared as JSON; 413 for one over ``max_bytes``, whether
    declared or streamed; 400 with -32700 for one outside ``json_limits`` (bad UTF-8, too deep,
    numbers or strings too long), before anything parses it."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self._app = app
        self._max = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self._app(scope, receive, send)
            return
        media_type = header(scope, b"content-type").split(";")[0].strip().lower()
        if media_type not in JSON_MEDIA_TYPES:
            log.warning("request_unsupported_media_type", path="/a2a", media_type=media_type[:100])
            message = "Content-Type must be application/json for JSON-RPC"
            await send_json(send, 415, jsonrpc_error(CONTENT_TYPE_NOT_SUPPORTED, message))
            return
        try:
            body = await read_capped_body(scope, receive, self._max)
        except BodyTooLarge as error:
            log.warning("request_too_large", path="/a2a", bytes=error.size, limit=self._max)
            message = f"request body too large (limit {self._max} bytes)"
            await send_json(send, 413, jsonrpc_error(INVALID_REQUEST, message))
            return
        except BodyTooSlow:
            log.warning("request_too_slow", path="/a2a", deadline_s=BODY_DEADLINE_SECONDS)
            await send_json(send, 408, jsonrpc_error(INVALID_REQUEST, "request body not received in time"))
            return
        try:
            check_json_bytes(body)
        except UnsafeJSON as error:
            log.warning("request_unparseable", path=scope.get("path", "/a2a"), reason=str(error))
            await send_json(send, 400, jsonrpc_error(PARSE_ERROR, f"request body refused: {error}"))
            return
        await self._app(scope, replaying(body, receive), send)


class RateLimiter:
    """``per_minute`` calls per caller in any moving minute, in memory.

    A caller's window is the times of its calls in the last minute; a caller without one is
    forgotten, so a flood of new callers (sprayed addresses, made-up names) costs memory for a
    minute and resets nobody's limit. Per process: with replicas, each allows ``per_minute`` (see
    the README). (The ``limits`` library did this before; its in-memory storage starts a thread
    to expire windows on nearly every call, 0.7 ms of CPU per A2A request here.)"""

    WINDOW_SECONDS = 60.0

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = per_minute
        self._clock = clock
        # Callers in the order of their last call or refusal: the idle ones gather at the front (one
        # refused after another's call may sit behind it, and is forgotten once that one is).
        self._windows: dict[str, list[float]] = {}

    def retry_after(self, caller: str) -> float:
        """0 when the call may go ahead (and is counted), else seconds until it may."""
        now = self._clock()
        opened = now - self.WINDOW_SECONDS
        self._forget_callers_idle_since(opened)
        window = self._windows.pop(caller, None) or []
        del window[: bisect.bisect_right(window, opened)]
        self._windows[caller] = window
        if len(window) >= self._limit:
            return max(window[0] - opened, 0.001)
        window.append(now)
        return 0.0

    def __len__(self) -> int:
        """How many callers are remembered."""
        return len(self._windows)

    def _forget_callers_idle_since(self, opened: float) -> None:
        while self._windows:
            caller, window = next(iter(self._windows.items()))
            if window and window[-1] > opened:
                return
            del self._windows[caller]


class CallerRateLimit:
    """429 with Retry-After when one caller (the authenticated peer, else the client address)
    sends more than its share. Placed inside the auth middleware, so it sees who the caller is."""

    def __init__(self, app: ASGIApp, *, limiter: RateLimiter) -> None:
        self._app = app
        self._limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        user = scope.get("user")
        caller = getattr(user, "display_name", None) or f"address:{(scope.get('client') or ('?',))[0]}"
        wait = self._limiter.retry_after(caller)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            log.warning("a2a_rate_limited", caller=caller, retry_after_s=seconds)
            await send_json(
                send,
                429,
                jsonrpc_error(RATE_LIMITED_CODE, "rate limit exceeded; retry later"),
                {"retry-after": str(seconds)},
            )
            return
        await self._app(scope, receive, send)
