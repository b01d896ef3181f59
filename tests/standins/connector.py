"""A stand-in Bot Connector service: the REST API Teams exposes at a serviceUrl.

It serves any path prefix (``{serviceUrl}/v3/...``), so a test can give each user a different
serviceUrl and see which one the bot called. It records every call (messages sent, and edits to
them: ``PUT .../activities/{activityId}``), can be told to fail, and to answer late.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response


@dataclass
class ConnectorCall:
    kind: str  # "create_conversation" | "send_activity" | "update_activity"
    prefix: str
    conversation_id: str | None
    body: dict[str, Any]
    authorization: str | None
    returned_id: str | None = None
    """The conversation id created, or the activity id of a message sent or edited."""
    at: float = field(default_factory=time.perf_counter)

    @property
    def text(self) -> str:
        """What the user reads: the message's text, or else its Adaptive Card's first text block."""
        if self.body.get("text"):
            return str(self.body["text"])
        blocks = self.card_texts
        return blocks[0] if blocks else ""

    @property
    def card(self) -> dict[str, Any] | None:
        for attachment in self.body.get("attachments") or []:
            if attachment.get("contentType") == "application/vnd.microsoft.card.adaptive":
                return dict(attachment.get("content") or {})
        return None

    @property
    def card_texts(self) -> list[str]:
        card = self.card
        return [
            str(item.get("text", ""))
            for item in (card or {}).get("body", [])
            if item.get("type") == "TextBlock"
        ]


@dataclass
class _Delay:
    kind: str
    seconds: float
    times: int
    where: Callable[[ConnectorCall], bool]


@dataclass
class _Failure:
    kind: str
    status: int
    times: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    where: Callable[[ConnectorCall], bool] = lambda call: True


class StandInConnector:
    def __init__(self) -> None:
        self.calls: list[ConnectorCall] = []
        self._failures: list[_Failure] = []
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self.listeners: list[Callable[[ConnectorCall], None]] = []
        self.app = FastAPI()
        self.app.add_api_route("/{prefix:path}/v3/conversations", self._create, methods=["POST"])
        self.app.add_api_route(
            "/{prefix:path}/v3/conversations/{conversation_id}/activities", self._send, methods=["POST"]
        )
        self.app.add_api_route(
            "/{prefix:path}/v3/conversations/{conversation_id}/activities/{activity_id}",
            self._update,
            methods=["PUT"],
        )
        self._delays: list[_Delay] = []

    def answer_late(
        self,
        kind: str,
        seconds: float,
        *,
        times: int = 1,
        where: Callable[[ConnectorCall], bool] = lambda call: True,
    ) -> None:
        """Hold the answer to the next ``times`` calls of ``kind`` (that ``where`` picks) for
        ``seconds``, after acting on them: Teams slow to answer what it has already done."""
        self._delays.append(_Delay(kind, seconds, times, where))

    def fail(
        self,
        kind: str,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: str | None = None,
        where: Callable[[ConnectorCall], bool] = lambda call: True,
    ) -> None:
        """Answer the next ``times`` calls of ``kind`` (that ``where`` picks) with ``status``, and
        with ``body`` as it is when given (say, JSON cut short by a broken proxy in front of Teams)."""
        self._failures.append(_Failure(kind, status, times, headers or {}, body, where))

    def created(self) -> list[ConnectorCall]:
        return [call for call in self.calls if call.kind == "create_conversation"]

    def sent(self, conversation_id: str | None = None) -> list[ConnectorCall]:
        """The messages in the chat as the user sees them now: each with its latest edit applied."""
        edits = {call.returned_id: call for call in self.calls if call.kind == "update_activity"}
        return [
            replace(call, body=edits[call.returned_id].body) if call.returned_id in edits else call
            for call in self.calls
            if call.kind == "send_activity"
            and call.body.get("type") == "message"
            and (conversation_id is None or call.conversation_id == conversation_id)
        ]

    def updates(self, conversation_id: str | None = None) -> list[ConnectorCall]:
        return [
            call
            for call in self.calls
            if call.kind == "update_activity"
            and (conversation_id is None or call.conversation_id == conversation_id)
        ]

    async def wait_for(self, predicate: Any, within: float = 10.0) -> None:
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: predicate(self))

    async def _record(self, call: ConnectorCall) -> None:
        self.calls.append(call)
        async with self._changed:
            self._changed.notify_all()

    def _failure_for(self, call: ConnectorCall) -> Response | None:
        for failure in self._failures:
            if failure.kind == call.kind and failure.times > 0 and failure.where(call):
                failure.times -= 1
                if failure.body is not None:
                    return Response(
                        failure.body,
                        status_code=failure.status,
                        headers=failure.headers,
                        media_type="application/json",
                    )
                return JSONResponse(
                    {"error": {"code": "Failure", "message": "stand-in failure"}},
                    status_code=failure.status,
                    headers=failure.headers,
                )
        return None

    async def _create(self, prefix: str, request: Request) -> Response:
        body = await request.json()
        call = ConnectorCall("create_conversation", prefix, None, body, request.headers.get("authorization"))
        if (failure := self._failure_for(call)) is None:
            call.returned_id = f"a:standin-{next(self._ids)}"
        await self._record(call)
        if failure is not None:
            return failure
        self._tell(call)
        await self._maybe_late(call)
        return JSONResponse({"id": call.returned_id}, status_code=201)

    async def _send(self, prefix: str, conversation_id: str, request: Request) -> Response:
        body = await request.json()
        call = ConnectorCall(
            "send_activity", prefix, conversation_id, body, request.headers.get("authorization")
        )
        failure = self._failure_for(call)
        if failure is None:
            call.returned_id = f"activity-{next(self._ids)}"
        await self._record(call)
        if failure is not None:
            return failure
        self._tell(call)
        await self._maybe_late(call)
        return JSONResponse({"id": call.returned_id}, status_code=201)

    async def _update(
        self, prefix: str, conversation_id: str, activity_id: str, request: Request
    ) -> Response:
        body = await request.json()
        call = ConnectorCall(
            "update_activity",
            prefix,
            conversation_id,
            body,
            request.headers.get("authorization"),
            activity_id,
        )
        failure = self._failure_for(call)
        if failure is None:
            await self._record(call)
        if failure is not None:
            return failure
        self._tell(call)
        return JSONResponse({"id": activity_id}, status_code=200)

    async def _maybe_late(self, call: ConnectorCall) -> None:
        for delay in self._delays:
            if delay.kind == call.kind and delay.times > 0 and delay.where(call):
                delay.times -= 1
                await asyncio.sleep(delay.seconds)
                return

    def _tell(self, call: ConnectorCall) -> None:
        for listener in self.listeners:
            listener(call)
