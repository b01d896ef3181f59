"""Request limits in front of the A2A and Teams endpoints: body size and a per-caller rate.

Both are plain ASGI middleware so they act before any body is parsed or any handler runs.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSONRPC_PATHS = frozenset({"/a2a"})


async def send_json(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    payload = json.dumps(body).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw_headers += [(name.encode(), value.encode()) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


def error_body(path: str, code: int, message: str) -> dict[str, Any]:
    """JSON-RPC style on the A2A endpoint, a plain error object elsewhere."""
    if path in JSONRPC_PATHS:
        return {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}
    return {"error": message}


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    """413 for a POST body over ``max_bytes`` on the given paths, whether declared or streamed."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, paths: Collection[str]) -> None:
        self._app = app
        self._max = max_bytes
        self._paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "").rstrip("/") or "/"
        if scope["type"] != "http" or scope.get("method") != "POST" or path not in self._paths:
            await self._app(scope, receive, send)
            return
        declared = header(scope, b"content-length")
        if declared.isdigit() and int(declared) > self._max:
            await self._refuse(send, path, int(declared))
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max:
                await self._refuse(send, path, size)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self._app(scope, replaying(b"".join(chunks), receive), send)

    async def _refuse(self, send: Send, path: str, size: int) -> None:
        logger.warning(
            "request_too_large",
            extra={"event": "request_too_large", "path": path, "bytes": size, "limit": self._max},
        )
        await send_json(
            send, 413, error_body(path, -32600, f"request body too large (limit {self._max} bytes)")
        )


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per caller: ``per_minute`` requests a minute on average, bursts up to the same."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = per_minute / 60.0
        self._capacity = float(per_minute)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def retry_after(self, caller: str) -> float:
        """0 when the call may go ahead (and is counted), else seconds until it may."""
        now = self._clock()
        bucket = self._buckets.get(caller)
        if bucket is None:
            if len(self._buckets) > 10_000:
                self._buckets.clear()
            bucket = self._buckets[caller] = _Bucket(self._capacity, now)
        bucket.tokens = min(self._capacity, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self._rate


class CallerRateLimit:
    """429 with Retry-After when one caller (the authenticated peer, else the client address)
    sends more than its share to the A2A endpoint. Place it inside the auth middleware."""

    def __init__(self, app: ASGIApp, *, limiter: RateLimiter, path: str = "/a2a") -> None:
        self._app = app
        self._limiter = limiter
        self._path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "").rstrip("/") != self._path:
            await self._app(scope, receive, send)
            return
        user = scope.get("user")
        caller = getattr(user, "display_name", None) or f"address:{(scope.get('client') or ('?',))[0]}"
        wait = self._limiter.retry_after(caller)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            logger.warning(
                "a2a_rate_limited",
                extra={"event": "a2a_rate_limited", "caller": caller, "retry_after_s": seconds},
            )
            await send_json(
                send,
                429,
                error_body(self._path, -32000, "rate limit exceeded; retry later"),
                {"retry-after": str(seconds)},
            )
            return
        await self._app(scope, receive, send)


def header(scope: Scope, name: bytes) -> str:
    """A request header's value ("" when absent); ``name`` in lower case."""
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return ""


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the already-read body to the next app, then defers to the original."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
