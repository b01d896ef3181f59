"""A stand-in for a bot built on Microsoft's Teams A2A sample (teams.py ``examples/a2a``, a2a-sdk 0.3).

It does on the wire exactly what ``../shared/sample-wire.md`` records of the unmodified sample, and
no more: the A2A app is a Starlette sub-app mounted at ``/a2a`` (so ``POST /a2a`` answers 307 to
``/a2a/``), the card is 0.3-shaped and only under ``/a2a``, requests are JSON-RPC 0.3 ``message/send``
without ``A2A-Version`` or ``Authorization``, a handoff carries neither ``handoffId`` nor ``hops``
and a fresh message id per send, answers are completed Tasks with a text ack in a data part, and
its one peer's card is fetched from ``{PEER_URL}/a2a/.well-known/agent-card.json`` on every Teams
turn: if that fails, the turn fails with 500. Its "model" hands every Teams message to the peer.
The greeting goes to the app-wide ``SERVICE_URL``, as the sample's does.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

RECEIVED_TEXT = "Handoff received and {user_name} contacted directly."
UNSUPPORTED_TEXT = "Unsupported or incomplete handoff message."
CONFIRMED_TEXT = "Handoff confirmed"
HANDOFF_FIELDS = ("from", "userName", "aadObjectId", "tenantId", "serviceUrl", "summary")


@dataclass
class ReceivedCall:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class SampleBot:
    name: str
    description: str
    service_url: str
    """The app-wide SERVICE_URL the sample greets at."""
    peer_url: str = ""
    self_url: str = ""
    received: list[ReceivedCall] = field(default_factory=list)
    answers_from_peer: list[httpx.Response] = field(default_factory=list)

    def app(self) -> Starlette:
        a2a = Starlette(
            routes=[
                Route("/", self._jsonrpc, methods=["POST"]),
                Route("/.well-known/agent-card.json", self._card, methods=["GET"]),
            ]
        )
        return Starlette(
            routes=[Route("/api/messages", self._activity, methods=["POST"]), Mount("/a2a", a2a)]
        )

    def card(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "url": f"{self.self_url}/a2a",
            "version": "1.0.0",
            "protocolVersion": "0.3.0",
            "preferredTransport": "JSONRPC",
            "capabilities": {"streaming": False},
            "defaultInputModes": ["application/json"],
            "defaultOutputModes": ["application/json"],
            "skills": [
                {
                    "id": "handoff",
                    "name": "Handoff",
                    "description": f"Hand a Teams user over to {self.name}.",
                    "tags": ["handoff"],
                }
            ],
        }

    # The A2A side ------------------------------------------------------------------------------

    async def _card(self, request: Request) -> Response:
        return JSONResponse(self.card())

    async def _jsonrpc(self, request: Request) -> Response:
        body = await request.json()
        self.received.append(ReceivedCall(request.url.path, dict(request.headers), body))
        if body.get("method") != "message/send":
            error = {"code": -32601, "message": "Method not found"}
            return JSONResponse({"jsonrpc": "2.0", "id": body.get("id"), "error": error})
        message = body.get("params", {}).get("message", {})
        handoff = next(
            (
                part.get("data")
                for part in message.get("parts", [])
                if part.get("kind") == "data" and isinstance(part.get("data"), dict)
            ),
            None,
        )
        if handoff and handoff.get("kind") == "handoff" and all(handoff.get(key) for key in HANDOFF_FIELDS):
            await self._greet(handoff)
            text = RECEIVED_TEXT.format(user_name=handoff["userName"])
        else:
            text = UNSUPPORTED_TEXT
        return JSONResponse(
            {"jsonrpc": "2.0", "id": body.get("id"), "result": _completed_task(message, text)}
        )

    async def _greet(self, handoff: dict[str, Any]) -> None:
        async with httpx.AsyncClient() as http:
            created = await http.post(
                f"{self.service_url}/v3/conversations",
                json={
                    "isGroup": False,
                    "bot": {"id": f"28:{self.name.lower()}"},
                    "members": [{"id": handoff["aadObjectId"]}],
                    "tenantId": handoff["tenantId"],
                },
            )
            conversation_id = created.json()["id"]
            await http.post(
                f"{self.service_url}/v3/conversations/{conversation_id}/activities",
                json={
                    "type": "message",
                    "text": f"Hi {handoff['userName']}, {handoff['from']} sent you: {handoff['summary']}",
                },
            )

    # The Teams side: every message is handed to the one peer ---------------------------------------

    async def _activity(self, request: Request) -> Response:
        activity = await request.json()
        async with httpx.AsyncClient(follow_redirects=True) as http:
            card = await http.get(f"{self.peer_url}/a2a/.well-known/agent-card.json")
            if card.status_code != 200:
                return Response("Internal Server Error", status_code=500)
            user = activity["from"]
            handoff = {
                "kind": "handoff",
                "from": self.name,
                "userName": user.get("name", ""),
                "aadObjectId": user.get("aadObjectId", ""),
                "tenantId": activity["conversation"].get("tenantId", ""),
                "serviceUrl": activity["serviceUrl"],
                "summary": activity.get("text", ""),
            }
            send = sample_send(handoff, message_id=str(uuid.uuid4()))
            self.answers_from_peer.append(await http.post(card.json()["url"], json=send))
            await http.post(
                f"{activity['serviceUrl']}/v3/conversations/{activity['conversation']['id']}/activities",
                json={"type": "message", "text": CONFIRMED_TEXT},
            )
        return Response(status_code=200)


def sample_send(handoff: dict[str, Any], *, message_id: str) -> dict[str, Any]:
    """The sample's JSON-RPC request for a handoff: 0.3 method and part shapes, nothing else."""
    return {
        "jsonrpc": "2.0",
        "id": str(uuid.uuid4()),
        "method": "message/send",
        "params": {
            "message": {
                "kind": "message",
                "role": "user",
                "messageId": message_id,
                "parts": [{"kind": "data", "data": handoff}],
            }
        },
    }


def _completed_task(message: dict[str, Any], text: str) -> dict[str, Any]:
    task_id, context_id = str(uuid.uuid4()), message.get("contextId") or str(uuid.uuid4())
    return {
        "kind": "task",
        "id": task_id,
        "contextId": context_id,
        "status": {
            "state": "completed",
            "message": {
                "kind": "message",
                "role": "agent",
                "messageId": str(uuid.uuid4()),
                "taskId": task_id,
                "contextId": context_id,
                "parts": [{"kind": "data", "data": {"text": text}}],
            },
        },
        "history": [message],
    }
