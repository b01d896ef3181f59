"""The handoff as an A2A task: Bob answers at once, Alice's notice appears at once and is edited in
place to the outcome when Bob pushes it (or when she polls), however long Teams takes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from a2a_bridge.auth import SharedSecretSigner
from bot.store.schema import A2A_TASKS_TABLE
from tests.conftest import ALICE_DESCRIPTION, BOB_DESCRIPTION
from tests.harness import (
    CONNECTING,
    LoopbackServer,
    alice_and_bob,
    message_activity,
    notice_settled,
    outcome_in,
    started_bot,
    user_says,
)
from tests.standins.connector import StandInConnector
from tests.standins.openai_server import StandInOpenAI, held_until, say, tool_then_say
from tests.test_a2a_endpoint import A2A_HEADERS, handoff, send_message

VPN = "My VPN keeps disconnecting on my laptop."
SUMMARY = "Dana's VPN keeps disconnecting on her laptop."


@dataclass
class PushInbox:
    """A caller's push endpoint: records what Bob posts."""

    received: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def app(self) -> Starlette:
        async def push(request: Request) -> Response:
            self.received.append((dict(request.headers), await request.json()))
            async with self._arrived:
                self._arrived.notify_all()
            return JSONResponse({})

        return Starlette(routes=[Route("/push/{handoff_id}", push, methods=["POST"])])

    async def wait(self, count: int = 1, within: float = 30) -> None:
        async with asyncio.timeout(within), self._arrived:
            await self._arrived.wait_for(lambda: len(self.received) >= count)


@contextlib.asynccontextmanager
async def push_inbox() -> AsyncIterator[tuple[PushInbox, str]]:
    inbox = PushInbox()
    server = LoopbackServer(inbox.app()).start()
    try:
        yield inbox, server.url
    finally:
        await server.stop()


def send_returning_at_once(service_url: str, push_url: str, handoff_id: str) -> dict[str, Any]:
    request = send_message({"data": handoff(service_url, handoffId=handoff_id)})
    request["params"]["configuration"] = {
        "returnImmediately": True,
        "taskPushNotificationConfig": {"id": handoff_id, "url": push_url, "token": "caller-token-1"},
    }
    return request


def get_task(task_id: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 9, "method": "GetTask", "params": {"id": task_id}}


async def test_bob_answers_at_once_with_a_working_task_then_pushes_its_end_which_get_task_keeps(
    http: httpx.AsyncClient, connector: StandInConnector, service_url: str, state_dir: Path
) -> None:
    connector.answer_late("create_conversation", 1.0)  # Teams is slow: the answer must not wait for it
    async with push_inbox() as (inbox, inbox_url):
        async with started_bot("Bob", BOB_DESCRIPTION, state_dir=state_dir) as bob:
            answer = await http.post(
                f"{bob.url}/a2a",
                headers=A2A_HEADERS,
                json=send_returning_at_once(service_url, f"{inbox_url}/push/h-1", "h-1"),
            )
            task = answer.json()["result"]["task"]
            assert task["status"]["state"] == "TASK_STATE_WORKING"
            assert connector.sent() == [], "answered before the greeting went out"

            await inbox.wait()
            headers, pushed = inbox.received[0]
            assert headers["x-a2a-notification-token"] == "caller-token-1"
            assert pushed["task"]["id"] == task["id"]
            assert pushed["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
            assert outcome_in({"result": pushed})["status"] == "delivered"
            assert len(connector.sent()) == 1

        async with started_bot("Bob", BOB_DESCRIPTION, state_dir=state_dir) as restarted:
            kept = await http.post(f"{restarted.url}/a2a", headers=A2A_HEADERS, json=get_task(task["id"]))
            assert kept.json()["result"]["status"]["state"] == "TASK_STATE_COMPLETED", "tasks outlive Bob"
            again = await http.post(
                f"{restarted.url}/a2a",
                headers=A2A_HEADERS,
                json=send_returning_at_once(service_url, f"{inbox_url}/push/h-1", "h-1"),
            )
            assert "result" in again.json(), again.text
            assert again.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
            assert len(connector.sent()) == 1, "a retried send is the same task: nobody is greeted twice"


async def test_a_working_task_that_cannot_be_written_is_still_answered_as_working_and_greeted_once(
    http: httpx.AsyncClient, connector: StandInConnector, service_url: str, state_dir: Path
) -> None:
    """The claim is Bob's: answering with an error would have the caller tell the user it failed
    while the greeting goes out."""
    async with (
        push_inbox() as (_inbox, inbox_url),
        started_bot("Bob", BOB_DESCRIPTION, state_dir=state_dir) as bob,
    ):
        async with bob.service.store.engine.begin() as connection:
            await connection.execute(text(f"DROP TABLE {A2A_TASKS_TABLE}"))
        answer = await http.post(
            f"{bob.url}/a2a",
            headers=A2A_HEADERS,
            json=send_returning_at_once(service_url, f"{inbox_url}/push/h-2", "h-2"),
        )
        assert answer.json()["result"]["task"]["status"]["state"] == "TASK_STATE_WORKING", answer.text
        await connector.wait_for(lambda c: len(c.sent()) == 1)
        [greeting] = connector.sent()
        assert greeting.text.startswith("**Bob:**")


async def test_teams_throttling_longer_than_the_call_timeout_still_ends_as_delivered_with_one_greeting(
    http: httpx.AsyncClient, connector: StandInConnector, service_url: str, state_dir: Path
) -> None:
    """Alice's A2A timeout is 1 s; Teams throttles Bob for 2 s. The old design said "took too long"."""
    connector.fail("create_conversation", 429, times=2, headers={"Retry-After": "1"})
    async with alice_and_bob(state_dir, peer_timeout_seconds=1) as (alice, _bob):
        [notice] = await user_says(
            http, connector, alice.url, VPN, conversation_id="a:dana-alice", service_url=service_url
        )
        assert "Bob will message you directly" in notice.text
        greetings = [call for call in connector.sent() if call.conversation_id != "a:dana-alice"]
        assert len(greetings) == 1
        [edit] = connector.updates("a:dana-alice")
        assert edit.returned_id == notice.returned_id, "the first notice was edited, not a second one sent"


async def test_a_greeting_answered_late_is_delivered_and_one_never_answered_is_not_called_a_failure(
    http: httpx.AsyncClient, connector: StandInConnector, service_url: str, state_dir: Path
) -> None:
    def greeting(call: Any) -> bool:
        return call.conversation_id not in ("a:dana-alice", "a:dana-again")

    # Late, beyond Alice's A2A timeout but within Bob's connector timeout: delivered.
    connector.answer_late("send_activity", 1.5, where=greeting)
    async with alice_and_bob(state_dir, peer_timeout_seconds=0.5) as (alice, _bob):
        [notice] = await user_says(
            http, connector, alice.url, VPN, conversation_id="a:dana-alice", service_url=service_url
        )
        assert "Bob will message you directly" in notice.text

    # Never answered within Bob's connector timeout, though the greeting went out: unconfirmed.
    connector.answer_late("send_activity", 3, where=greeting)
    again = state_dir / "again"
    again.mkdir()
    async with (
        started_bot("Bob", BOB_DESCRIPTION, state_dir=again, connector_timeout_seconds=1) as bob,
        started_bot("Alice", ALICE_DESCRIPTION, state_dir=again, peer_urls=[bob.url]) as alice,
    ):
        [notice] = await user_says(
            http, connector, alice.url, VPN, conversation_id="a:dana-again", service_url=service_url
        )
    assert "Teams did not confirm that Bob's greeting reached you" in notice.text
    assert "did not work" not in notice.text


@dataclass
class RecordingHop:
    """A network hop in front of Alice that keeps a copy of every push posted to her."""

    target: str = ""
    pushes: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k not in ("host", "content-length")}
        if "/a2a/push/" in request.url.path:
            self.pushes.append((request.url.path, headers, body))
        async with httpx.AsyncClient() as client:
            answer = await client.request(
                request.method, self.target + request.url.path, content=body, headers=headers
            )
        await Response(answer.content, answer.status_code, headers={"content-type": "application/json"})(
            scope, receive, send
        )


async def test_pushes_that_are_forged_replayed_or_for_unknown_handoffs_are_refused_and_change_nothing(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_settings: dict[str, Any],
    service_url: str,
    state_dir: Path,
) -> None:
    secret = "s" * 40
    gate = asyncio.Event()
    llm.script("alice-model", tool_then_say("handoff_to_peer", "unused", peer="Bob", summary=SUMMARY))
    llm.script("bob-model", held_until(gate, lambda request: say("Hi Dana, Bob here.")))
    hop = RecordingHop()
    hop_server = LoopbackServer(hop).start()
    try:
        async with (
            started_bot(
                "Bob",
                BOB_DESCRIPTION,
                state_dir=state_dir,
                a2a_auth_secret=secret,
                openai_model="bob-model",
                **llm_settings,
            ) as bob,
            started_bot(
                "Alice",
                ALICE_DESCRIPTION,
                state_dir=state_dir,
                a2a_auth_secret=secret,
                bot_self_url=hop_server.url,
                peer_urls=[bob.url],
                openai_model="alice-model",
                **llm_settings,
            ) as alice,
        ):
            hop.target = alice.url
            await http.post(
                f"{alice.url}/api/messages",
                json=message_activity(VPN, conversation_id="a:dana-alice", service_url=service_url),
            )
            await llm.wait_for_requests("bob-model", 1)  # Bob is greeting; Alice's handoff is in progress
            [waiting] = await alice.service.store.sent.waiting()
            push_url = f"{alice.url}/a2a/push/{waiting.handoff_id}"
            failed = {
                "task": {"id": waiting.task_id, "contextId": "c", "status": {"state": "TASK_STATE_FAILED"}}
            }

            def signed(issuer: str) -> dict[str, str]:
                return {"Authorization": f"Bearer {SharedSecretSigner(secret, issuer).token_for('Alice')}"}

            unsigned = await http.post(push_url, json=failed, headers={"X-A2A-Notification-Token": "x"})
            unknown = await http.post(
                f"{alice.url}/a2a/push/no-such-handoff", json=failed, headers=signed("Bob")
            )
            forged = await http.post(
                push_url, json=failed, headers={**signed("Bob"), "X-A2A-Notification-Token": "guess"}
            )
            other_peer = await http.post(push_url, json=failed, headers=signed("Carol"))
            assert (unsigned.status_code, unknown.status_code) == (401, 404)
            assert (forged.status_code, other_peer.status_code) == (401, 401)
            [notice] = connector.sent("a:dana-alice")
            assert CONNECTING in notice.text, "no refused push changed the notice"

            gate.set()
            text = await notice_settled(connector, "a:dana-alice")
            assert "Bob will message you directly" in text
            [(path, headers, body)] = hop.pushes
            replayed = await http.post(alice.url + path, content=body, headers=headers)
            fresh_token = await http.post(
                alice.url + path,
                content=body,
                headers={**{k: v for k, v in headers.items() if k != "authorization"}, **signed("Bob")},
            )
            assert replayed.status_code == 401, "the same signed push twice: refused"
            assert fresh_token.status_code == 404, "a push for a handoff that has ended: nothing waits for it"
            assert connector.sent("a:dana-alice")[-1].text == text
            assert len(connector.updates("a:dana-alice")) == 1
    finally:
        await hop_server.stop()
