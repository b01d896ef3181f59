"""Where a peer tells this bot that a handoff it sent has ended: ``POST /a2a/push/{handoffId}``.

The route sits behind the A2A door, so a push is authenticated like any call to ``/a2a`` (a peer
token, when peers authenticate) and capped like one. The body is the ended task as a
``StreamResponse``; the ``X-A2A-Notification-Token`` must be the one this bot gave for that handoff.
What the push means is the receiver's business (``PushReceiver``); this module only reads it.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Protocol

import structlog
from a2a.types import StreamResponse, Task
from google.protobuf.json_format import ParseDict, ParseError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from a2a_bridge.push import NOTIFICATION_TOKEN_HEADER

log = structlog.get_logger(__name__)

PUSH_PATH = "/push/{handoff_id}"


class PushVerdict(IntEnum):
    ACCEPTED = 200
    UNAUTHORIZED = 401
    UNKNOWN = 404


class PushReceiver(Protocol):
    async def receive(
        self, handoff_id: str, task: Task, *, token: str, caller: str | None
    ) -> PushVerdict: ...


def push_route(receiver: PushReceiver) -> Route:
    async def push(request: Request) -> Response:
        handoff_id = request.path_params["handoff_id"]
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("not an object")
            event = ParseDict(body, StreamResponse(), ignore_unknown_fields=True)
        except (ValueError, ParseError, UnicodeDecodeError):
            log.warning("push_refused", reason="body is not a StreamResponse")
            return JSONResponse({"error": "the body must be an A2A StreamResponse"}, status_code=400)
        if not event.HasField("task"):
            log.warning("push_refused", reason="no task in the notification")
            return JSONResponse({"error": "the notification must carry the task"}, status_code=400)
        user = request.scope.get("user")
        caller = getattr(user, "display_name", None) if getattr(user, "is_authenticated", False) else None
        verdict = await receiver.receive(
            handoff_id, event.task, token=request.headers.get(NOTIFICATION_TOKEN_HEADER, ""), caller=caller
        )
        messages = {
            PushVerdict.ACCEPTED: "ok",
            PushVerdict.UNAUTHORIZED: "this notification is not for a handoff this caller may report on",
            PushVerdict.UNKNOWN: "no handoff of this bot waits under that id",
        }
        return JSONResponse({"result": messages[verdict]}, status_code=int(verdict))

    return Route(PUSH_PATH, push, methods=["POST"])
