"""A gate in front of the Teams SDK's /api/messages: a body over the cap gets 413, one that is not
a valid activity gets 400, and a well-formed activity of a kind the SDK does not model gets 200.

The SDK's route parses and validates inside its handler and answers 500 to anything it cannot
read; Teams (and anything else that can reach the endpoint) deserves a 4xx that says what is wrong.
Teams also sends activities the SDK's models do not know (``installationUpdate`` with
``add-upgrade`` or ``remove-upgrade``, invokes of features this bot does not offer, new types):
those are authenticated exactly as the SDK would, then acknowledged, so Teams neither retries them
nor shows the user an error.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
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
    header,
    read_capped_body,
    replaying,
    send_json,
)
from a2a_bridge.json_limits import UnsafeJSON, check_json_bytes

log = structlog.get_logger(__name__)

TEAMS_PATH = "/api/messages"

# Invokes the SDK models and would act on, for features this bot does not have: it has no OAuth
# connection, so a sign-in callback belongs to no flow it started (the SDK would call the token
# service for it, and answer 500 when that fails).
UNUSED_INVOKES = frozenset({"signin/verifyState", "signin/tokenExchange", "signin/failure"})

Authenticate = Callable[[str, str | None], Awaitable[bool]]
"""(the Authorization header, the activity's serviceUrl) -> whether Teams sent it."""


@dataclass(frozen=True)
class Unmodelled:
    """A well-formed activity of a kind the Teams SDK cannot parse: acknowledged, not acted on."""

    kind: str
    service_url: str | None


class ActivityGate:
    def __init__(self, app: ASGIApp, *, max_bytes: int, authenticate: Authenticate | None = None) -> None:
        """``authenticate``: the SDK's own check of inbound tokens; None when requests are not
        authenticated (local development)."""
        self._app = app
        self._max = max_bytes
        self._authenticate = authenticate

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
        if isinstance(problem, Unmodelled):
            await self._acknowledge(scope, send, problem)
            return
        if problem is not None:
            log.warning("activity_rejected", reason=problem)
            await send_json(send, 400, {"error": f"invalid activity: {problem}"})
            return
        await self._app(scope, replaying(body, receive), send)

    async def _acknowledge(self, scope: Scope, send: Send, activity: Unmodelled) -> None:
        if self._authenticate is not None:
            authorization = header(scope, b"authorization")
            if not authorization.startswith("Bearer ") or not await self._authenticate(
                authorization.removeprefix("Bearer "), activity.service_url
            ):
                log.warning("activity_unauthenticated", kind=activity.kind)
                await send_json(send, 401, {"error": "Unauthorized"})
                return
        log.info("activity_acknowledged", kind=activity.kind)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


def _problem(body: bytes) -> str | Unmodelled | None:
    try:
        check_json_bytes(body)
        activity = json.loads(body)
    except UnsafeJSON as error:
        return str(error)
    except ValueError:
        return "body is not JSON"
    if not isinstance(activity, dict):
        return "body is not a JSON object"
    if activity.get("type") == "invoke" and activity.get("name") in UNUSED_INVOKES:
        return _routing_problem(activity) or _acknowledged(activity)
    try:
        ActivityTypeAdapter.validate_python(activity)
    except ValidationError as error:
        unmodelled = _unmodelled(activity, error)
        if unmodelled is not None:
            return _routing_problem(activity) or unmodelled
        fields = sorted(
            {".".join(str(part) for part in item["loc"][1:]) or "type" for item in error.errors()}
        )
        return "bad or missing field(s): " + ", ".join(fields[:8])
    except (TypeError, ValueError) as error:
        return f"unreadable ({type(error).__name__})"
    return _routing_problem(activity)


def _unmodelled(activity: dict[str, object], error: ValidationError) -> Unmodelled | None:
    """The activity failed only because its type (or its action, or its invoke name) is one the
    SDK's models do not list."""
    kind = activity.get("type")
    if not isinstance(kind, str) or not kind or not _printable(kind):
        return None
    if any(item["type"] != "union_tag_invalid" for item in error.errors()):
        return None
    return _acknowledged(activity)


def _acknowledged(activity: dict[str, object]) -> Unmodelled:
    kind = str(activity.get("type"))
    detail = activity.get("name") if kind in ("invoke", "event") else activity.get("action")
    service_url = activity.get("serviceUrl")
    return Unmodelled(
        kind=f"{kind}/{detail}"[:100] if isinstance(detail, str) and _printable(detail) else kind,
        service_url=service_url if isinstance(service_url, str) else None,
    )


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
