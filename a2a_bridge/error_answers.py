"""JSON-RPC errors in our own words: a2a-sdk may put a parser's or validator's text (pydantic's
"3 validation errors for SendMessageRequest ... input_value=...") in an error's ``data``, which tells
a caller about our internals and echoes its input back. This middleware, innermost on ``/a2a``,
drops ``data`` from every error answer and keeps the code and the message, which the SDK and this
package word themselves; an internal error (-32603) says only that, its details go to the log."""

from __future__ import annotations

import json
from typing import Any

import structlog

from a2a_bridge.asgi import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger(__name__)


class OwnWordsForErrors:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self._app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def reworded(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                content_type = dict(message.get("headers", [])).get(b"content-type", b"")
                if not content_type.startswith(b"application/json"):
                    await send(message)  # a stream (or anything not JSON) passes as it is
                    return
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(bytes(message.get("body", b"")))
            if message.get("more_body", False):
                return
            body = _without_error_data(b"".join(chunks))
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self._app(scope, receive, reworded)


INTERNAL_ERROR = -32603
INVALID_REQUEST = -32600
# a2a-sdk's 0.3 compatibility layer answers a 0.3 method sent with ``A2A-Version: 1.0`` with -32603
# (0.3 has no code for it): the caller's mistake, so it is an invalid request, said so.
_VERSION_MISMATCH = "is not supported by this handler"


def _without_error_data(body: bytes) -> bytes:
    if b'"error"' not in body:
        return body
    try:
        answer: Any = json.loads(body)
    except ValueError:
        return body
    error = answer.get("error") if isinstance(answer, dict) else None
    if not isinstance(error, dict):
        return body
    changed = error.pop("data", None) is not None
    if error.get("code") == INTERNAL_ERROR:
        if _VERSION_MISMATCH in str(error.get("message", "")):
            error["code"] = INVALID_REQUEST
            error["message"] = (
                "this method belongs to another A2A version than the A2A-Version header names "
                "(0.3 methods are message/send, tasks/get...; 1.0 methods SendMessage, GetTask...)"
            )
        else:
            log.error("a2a_internal_error", message=str(error.get("message", ""))[:300])
            error["message"] = "internal error; please try again later"
        changed = True
    if not changed:
        return body
    return json.dumps(answer, separators=(",", ":")).encode()
