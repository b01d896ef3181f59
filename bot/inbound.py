"""A gate in front of the Teams SDK's /api/messages: a body over the cap gets 413, one that is not
a valid activity gets 400.

The SDK's route parses and validates inside its handler and answers 500 to anything it cannot
read; Teams (and anything else that can reach the endpoint) deserves a 4xx that says what is wrong.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import structlog
from microsoft_teams.api import ActivityTypeAdapter
from pydantic import ValidationError

from a2a_bridge.asgi import (
    BODY_DEADLINE_SECONDS,
    ASGIApp,
    BodyTooLarge,
    BodyTooSlow,
    Receive,
    Scope,
    Send,
    read_capped_body,
    replaying,
    send_json,
)
from a2a_bridge.json_limits import UnsafeJSON, check_json_bytes

log = structlog.get_logger(__name__)

TEAMS_PATH = "/api/messages"


class ActivityGate:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self._app = app
        self._max = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") != TEAMS_PATH:
            await self._app(scope, receive, send)
            return
        try:
            body = await read_capped_body(scope, receive, self._max)
        except BodyTooLarge as error:
            log.warning("request_too_large", path=TEAMS_PATH, bytes=error.size, limit=self._max)
            await send_json(send, 413, {"error": f"request body too large (limit {self._max} bytes)"})
            return
        except BodyTooSlow:
            log.warning("request_too_slow", path=TEAMS_PATH, deadline_s=BODY_DEADLINE_SECONDS)
            await send_json(send, 408, {"error": "request body not received in time"})
            return
        problem = _problem(body)
        if problem is not None:
            log.warning("activity_rejected", reason=problem)
            await send_json(send, 400, {"error": f"invalid activity: {problem}"})
            return
        await self._app(scope, replaying(body, receive), send)


def _problem(body: bytes) -> str | None:
    try:
        check_json_bytes(body)
        activity = json.loads(body)
    except UnsafeJSON as error:
        return str(error)
    except ValueError:
        return "body is not JSON"
    if not isinstance(activity, dict):
        return "body is not a JSON object"
    try:
        ActivityTypeAdapter.validate_python(activity)
    except ValidationError as error:
        fields = sorted(
            {".".join(str(part) for part in item["loc"][1:]) or "type" for item in error.errors()}
        )
        return "bad or missing field(s): " + ", ".join(fields[:8])
    except (TypeError, ValueError) as error:
        return f"unreadable ({type(error).__name__})"
    return _routing_problem(activity)


def _routing_problem(activity: dict[str, object]) -> str | None:
    """Replies go to ``serviceUrl`` under ``conversation.id``: both must make a sane URL."""
    service_url = activity.get("serviceUrl")
    try:
        parts = urlsplit(service_url) if isinstance(service_url, str) else None
        host = parts.hostname if parts is not None else None
        _ = parts.port if parts is not None else None
    except ValueError:
        parts, host = None, None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not host
        or "@" in parts.netloc
        or not _printable(service_url)
    ):
        return "serviceUrl: must be an absolute http(s) URL"
    conversation = activity.get("conversation")
    conversation_id = conversation.get("id") if isinstance(conversation, dict) else None
    if not isinstance(conversation_id, str) or not conversation_id.strip() or not _printable(conversation_id):
        return "conversation.id: must be a non-empty printable string"
    return None


def _printable(value: object) -> bool:
    return isinstance(value, str) and value.isprintable() and len(value) <= 1000
