"""ASGI plumbing both surfaces share: reading a capped body, answering JSON, mounting a sub-app.

It lives here because ``a2a_bridge`` is the lower layer: ``bot`` may import it, never the reverse.
Nothing in it knows about A2A or Teams.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.routing import Match, Mount, get_route_path
from starlette.types import ASGIApp as StarletteASGIApp

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def send_json(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    payload = json.dumps(body).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw_headers += [(name.encode(), value.encode()) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


def header(scope: Scope, name: bytes) -> str:
    """A request header's value ("" when absent); ``name`` in lower case."""
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return ""


BODY_DEADLINE_SECONDS = 10.0
"""How long a client may take to send a body: a stalled upload does not hold its memory for long."""


class BodyTooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


class BodyTooSlow(Exception):
    pass


async def read_capped_body(
    scope: Scope, receive: Receive, max_bytes: int | None, *, deadline: float | None = None
) -> bytes:
    """The whole request body; ``BodyTooLarge`` as soon as it (declared or streamed) passes the cap,
    ``BodyTooSlow`` if it has not all come within ``deadline`` seconds.

    ``max_bytes=None`` reads what is left without a cap: only behind a middleware that capped it."""
    max_bytes = max_bytes if max_bytes is not None else sys.maxsize
    deadline = deadline if deadline is not None else BODY_DEADLINE_SECONDS
    declared = header(scope, b"content-length")
    if declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge(int(declared))
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(deadline):
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    break
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > max_bytes:
                    raise BodyTooLarge(size)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
    except TimeoutError:
        raise BodyTooSlow() from None
    return b"".join(chunks)


async def read_prefix(receive: Receive, max_bytes: int, *, deadline: float) -> bytes:
    """At most the first ``max_bytes`` of the body, whatever has come within ``deadline``."""
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(deadline):
            while size < max_bytes:
                message = await receive()
                if message["type"] != "http.request":
                    break
                chunk = message.get("body", b"")[: max_bytes - size]
                size += len(chunk)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
    except TimeoutError:
        pass
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


class ExactMount(Mount):
    """A mount that serves ``/prefix`` and ``/prefix/...`` alike, with no redirect.

    Starlette's own ``Mount`` answers ``/prefix`` with a 307 to ``/prefix/``, which clients that
    do not follow redirects (or re-POST without the body) cannot use."""

    def __init__(self, path: str, app: StarletteASGIApp) -> None:
        super().__init__(path, app=app)
        self._prefix = path.rstrip("/")

    def matches(self, scope: Any) -> tuple[Match, Any]:
        if scope["type"] == "http" and get_route_path(scope) == self._prefix:
            match, child = super().matches({**scope, "path": self._prefix + "/"})
            if match is Match.FULL:
                child["path"] = scope.get("root_path", "") + self._prefix + "/"
            return match, child
        return super().matches(scope)
