"""Limits at the A2A door: a body cap and a per-caller rate, both answered in JSON-RPC's shape.

Plain ASGI middleware inside the A2A sub-app, so they act before any body is parsed or any handler
runs, and only on A2A traffic (the sub-app sees nothing else).
"""

from __future__ import annotations

import json
import math
import re
import time
from typing import Any

import structlog
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

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
    """``per_minute`` calls per caller in any moving minute (the ``limits`` library, in memory).

    Each caller's window expires on its own a minute after its last call, so a flood of new
    callers (sprayed addresses, made-up names) costs memory for a minute and resets nobody's limit.
    Per process: with replicas, each allows ``per_minute`` (see the README)."""

    def __init__(self, per_minute: int) -> None:
        self._item = RateLimitItemPerMinute(per_minute)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def retry_after(self, caller: str) -> float:
        """0 when the call may go ahead (and is counted), else seconds until it may."""
        if self._limiter.hit(self._item, caller):
            return 0.0
        reset_at, _ = self._limiter.get_window_stats(self._item, caller)
        return max(reset_at - time.time(), 0.001)


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
