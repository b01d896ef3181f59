"""The card, as each protocol version reads it.

A2A 1.0's AgentCard schema allows no fields beyond its own, and 0.3 clients (among them bots built
on Microsoft's sample) need the 0.3 top-level ``url``, ``protocolVersion`` and
``preferredTransport``. The spec reads a request without ``A2A-Version`` as 0.3, so the card is
answered by the version asked for: a 1.0 client gets the 1.0 card and nothing else; any other
request gets the 1.0 card with the 0.3 fields beside it, which parsers of either version read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from a2a.server.request_handlers.response_helpers import agent_card_to_dict
from a2a.types import AgentCard
from a2a.utils.constants import VERSION_HEADER
from google.protobuf.json_format import MessageToDict
from packaging.version import InvalidVersion, Version
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

WELL_KNOWN_CARD_PATH = "/.well-known/agent-card.json"
FIRST_CURRENT_VERSION = Version("1.0")


def asks_for_current_card(version_header: str | None) -> bool:
    if not version_header:
        return False
    try:
        return Version(version_header.strip()) >= FIRST_CURRENT_VERSION
    except InvalidVersion:
        return False


class _Rendition:
    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32]
        self.etag = f'"{digest}"'


class _Renditions:
    """Both renditions of the card in force; made again only when the card itself is replaced
    (the persona was reloaded), so a card request costs a dictionary lookup."""

    def __init__(self, card: Callable[[], AgentCard]) -> None:
        self._card = card
        self._of: AgentCard | None = None
        self._current = self._compatible = _Rendition({})

    def get(self, current: bool) -> _Rendition:
        card = self._card()
        if card is not self._of:
            self._current = _Rendition(MessageToDict(card))
            self._compatible = _Rendition(agent_card_to_dict(card))
            self._of = card
        return self._current if current else self._compatible


def card_route(
    card: Callable[[], AgentCard], *, path: str = WELL_KNOWN_CARD_PATH, cache_control: str
) -> Route:
    """``card`` gives the card in force at each request (a new one after a reload gets a new ETag)."""
    renditions = _Renditions(card)

    async def agent_card(request: Request) -> Response:
        rendition = renditions.get(asks_for_current_card(request.headers.get(VERSION_HEADER)))
        headers = {"ETag": rendition.etag, "Cache-Control": cache_control, "Vary": VERSION_HEADER}
        if _matches(request.headers.get("if-none-match"), rendition.etag):
            return Response(status_code=304, headers=headers)
        return JSONResponse(rendition.body, headers=headers)

    return Route(path, agent_card, methods=["GET"])


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags
