"""A refused handoff leaves nothing behind, and one peer's handoff id is never another's: the
ledger and the tasks are keyed by (caller, handoffId), and a caller sees only its own tasks."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from a2a_bridge.auth import SharedSecretSigner
from a2a_bridge.tasks import task_id_for
from bot.store.schema import handoffs
from tests.conftest import BOB_DESCRIPTION
from tests.harness import RunningBot, outcome_in, started_bot
from tests.standins.connector import StandInConnector
from tests.test_a2a_auth import SECRET
from tests.test_a2a_endpoint import A2A_HEADERS, handoff, send_message


@pytest.fixture
async def bob(state_dir: Path) -> Any:
    async with started_bot("Bob", BOB_DESCRIPTION, state_dir=state_dir, a2a_auth_secret=SECRET) as running:
        yield running


def as_peer(name: str) -> dict[str, str]:
    return {
        **A2A_HEADERS,
        "Authorization": f"Bearer {SharedSecretSigner(SECRET, issuer=name).token_for('Bob')}",
    }


async def rpc(http: httpx.AsyncClient, bob: RunningBot, peer: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await http.post(f"{bob.url}/a2a", headers=as_peer(peer), json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def get_task(task_id: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 2, "method": "GetTask", "params": {"id": task_id}}


async def ledger_rows(bob: RunningBot) -> int:
    async with bob.service.store.engine.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(handoffs))).scalar_one())


async def test_a_handoff_refused_for_its_from_leaves_no_task_and_no_ledger_row(
    http: httpx.AsyncClient, bob: RunningBot, connector: StandInConnector, service_url: str
) -> None:
    payload = handoff(service_url, **{"from": "Alice", "summary": "x" * 2000})
    answer = await rpc(http, bob, "Carol", send_message({"data": payload}))
    assert answer["error"]["code"] == -32602
    found = await rpc(http, bob, "Carol", get_task(task_id_for("Carol", payload["handoffId"])))
    assert found["error"]["code"] == -32001, "no task was kept"
    listed = await rpc(http, bob, "Carol", {"jsonrpc": "2.0", "id": 3, "method": "ListTasks", "params": {}})
    assert listed["result"].get("tasks", []) == []
    assert await ledger_rows(bob) == 0
    assert connector.calls == []


async def test_a_handoff_refused_by_policy_is_answered_without_a_task(
    http: httpx.AsyncClient, bob: RunningBot, connector: StandInConnector
) -> None:
    payload = handoff("https://evil.example.com/teams")
    answer = await rpc(http, bob, "Alice", send_message({"data": payload}))
    outcome = outcome_in(answer)
    assert outcome["status"] == "rejected" and outcome["reasonCode"] == "policy_rejected"
    assert "task" not in answer["result"]
    found = await rpc(http, bob, "Alice", get_task(task_id_for("Alice", payload["handoffId"])))
    assert found["error"]["code"] == -32001
    assert await ledger_rows(bob) == 0
    assert connector.calls == []


async def test_two_peers_reusing_one_handoff_id_each_get_their_own_handoff(
    http: httpx.AsyncClient, bob: RunningBot, connector: StandInConnector, service_url: str
) -> None:
    shared_id = uuid.uuid4().hex
    alices = handoff(service_url, handoffId=shared_id, aadObjectId="aad-dana")
    carols = handoff(service_url, handoffId=shared_id, aadObjectId="aad-erin", **{"from": "Carol"})
    first = outcome_in(await rpc(http, bob, "Alice", send_message({"data": alices})))
    second = outcome_in(await rpc(http, bob, "Carol", send_message({"data": carols})))
    assert first["status"] == second["status"] == "delivered"
    assert [call.body["members"][0]["id"] for call in connector.created()] == ["aad-dana", "aad-erin"]
    assert first["conversationId"] != second["conversationId"], "Carol is not told Alice's outcome"
    assert await ledger_rows(bob) == 2


async def test_a_caller_sees_only_its_own_tasks(
    http: httpx.AsyncClient, bob: RunningBot, service_url: str
) -> None:
    payload = handoff(service_url)
    await rpc(http, bob, "Alice", send_message({"data": payload}))
    alices_task = task_id_for("Alice", payload["handoffId"])
    assert (await rpc(http, bob, "Alice", get_task(alices_task)))["result"]["id"] == alices_task
    assert (await rpc(http, bob, "Carol", get_task(alices_task)))["error"]["code"] == -32001
    listed = await rpc(http, bob, "Carol", {"jsonrpc": "2.0", "id": 3, "method": "ListTasks", "params": {}})
    assert listed["result"].get("tasks", []) == []


async def test_a_retry_of_a_handoff_that_failed_is_answered_at_once_with_its_outcome(
    http: httpx.AsyncClient, bob: RunningBot, connector: StandInConnector, service_url: str
) -> None:
    connector.fail("create_conversation", 403, times=1)
    request = send_message({"data": handoff(service_url)})
    first = outcome_in(await rpc(http, bob, "Alice", request))
    assert first["status"] == "failed"
    retried = await http.post(f"{bob.url}/a2a", headers=as_peer("Alice"), json=request, timeout=5)
    assert outcome_in(retried.json()) == first
    assert len(connector.calls) == 1, "the retry tried nothing again"
