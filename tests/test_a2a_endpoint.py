"""Bob's /a2a endpoint driven with raw JSON-RPC, as any peer (or attacker) could."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import BOB_DESCRIPTION
from tests.harness import RunningBot, outcome_in, started_bot
from tests.standins.connector import StandInConnector

A2A_HEADERS = {"A2A-Version": "1.0"}


def handoff(service_url: str, **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "kind": "handoff",
        "handoffId": uuid.uuid4().hex,
        "from": "Alice",
        "userName": "Dana Smith",
        "aadObjectId": "aad-dana-0001",
        "tenantId": "tenant-contoso",
        "serviceUrl": service_url,
        "summary": "Dana's VPN keeps disconnecting.",
        "hops": 1,
    }
    payload.update(overrides)
    return {key: value for key, value in payload.items() if value is not None}


def send_message(*parts: dict[str, Any], message_id: str | None = None) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "SendMessage",
        "params": {
            "message": {
                "role": "ROLE_USER",
                "messageId": message_id or uuid.uuid4().hex,
                "parts": list(parts),
            }
        },
    }


def outcome_of(response: httpx.Response) -> dict[str, Any]:
    return outcome_in(response.json())


@pytest.fixture
async def bob(state_dir: Path) -> Any:
    async with started_bot("Bob", BOB_DESCRIPTION, state_dir=state_dir) as running:
        yield running


async def assert_still_serving(http: httpx.AsyncClient, bob: RunningBot) -> None:
    card = await http.get(f"{bob.url}/.well-known/agent-card.json")
    assert card.status_code == 200 and card.json()["name"] == "Bob"


async def test_valid_handoff_is_delivered_with_the_new_conversation_id(
    http: httpx.AsyncClient, bob: RunningBot, connector: StandInConnector, service_url: str
) -> None:
    response = await http.post(
        f"{bob.url}/a2a", headers=A2A_HEADERS, json=send_message({"data": handoff(service_url)})
    )
    outcome = outcome_of(response)
    assert outcome["status"] == "delivered"
    assert outcome["conversationId"] == connector.created()[0].returned_id
    [greeting] = connector.sent(outcome["conversationId"])
    assert greeting.text.startswith("**Bob:** [offline model] Hi Dana Smith, I'm Bob")
    assert "Dana's VPN keeps disconnecting." in greeting.text


@pytest.mark.parametrize(
    ("parts", "field"),
    [
        ([{"data": {"kind": "something-else"}}], "expected exactly one data part with kind 'handoff'"),
        ([{"data": {"kind": "handoff", "from": "Alice"}}], "aadObjectId: Field required"),
        ([{"data": {"kind": "handoff", "hops": "two"}}], "hops: Input should be a valid integer"),
        ([{"data": {"kind": "handoff", "aadObjectId": 42}}], "aadObjectId: Input should be a valid string"),
        ([{"data": {"kind": "handoff", "serviceUrl": "ftp://x"}}], "serviceUrl: String should match pattern"),
    ],
    ids=["not-a-handoff", "missing-fields", "wrong-type-hops", "numeric-id", "bad-url"],
)
async def test_malformed_handoff_gets_invalid_params_naming_the_field(
    http: httpx.AsyncClient, bob: RunningBot, connector: StandInConnector, parts: list, field: str
) -> None:
    response = await http.post(f"{bob.url}/a2a", headers=A2A_HEADERS, json=send_message(*parts))
    assert response.status_code == 200
    error = response.json()["error"]
    assert error["code"] == -32602
    assert field in error["message"]
    assert connector.calls == []
    await assert_still_serving(http, bob)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", -32700),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "NoSuchMethod", "params": {}}', -32601),
        (b'[{"jsonrpc": "2.0", "id": 1, "method": "SendMessage"}]', -32600),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "SendStreamingMessage", "params": {"message": '
            b'{"role": "ROLE_USER", "messageId": "m1", "parts": [{"text": "hi"}]}}}',
            -32004,
        ),
    ],
    ids=["not-json", "unknown-method", "batch", "streaming-unsupported"],
)
async def test_broken_json_rpc_gets_a_json_rpc_error(
    http: httpx.AsyncClient, bob: RunningBot, body: bytes, code: int
) -> None:
    response = await http.post(
        f"{bob.url}/a2a", headers={**A2A_HEADERS, "content-type": "application/json"}, content=body
    )
    assert response.status_code < 500
    assert response.json()["error"]["code"] == code
    await assert_still_serving(http, bob)


async def test_handoff_over_the_hop_limit_is_rejected_without_calling_teams(
    http: httpx.AsyncClient, bob: RunningBot, connector: StandInConnector, service_url: str
) -> None:
    response = await http.post(
        f"{bob.url}/a2a", headers=A2A_HEADERS, json=send_message({"data": handoff(service_url, hops=2)})
    )
    outcome = outcome_of(response)
    assert outcome["status"] == "rejected"
    assert "already passed on" in outcome["reason"]
    assert connector.calls == []


async def test_handoff_to_a_service_url_off_the_allowlist_is_rejected_before_any_call(
    http: httpx.AsyncClient, bob: RunningBot, connector: StandInConnector
) -> None:
    evil = "https://attacker.example.net/teams"
    response = await http.post(
        f"{bob.url}/a2a", headers=A2A_HEADERS, json=send_message({"data": handoff(evil)})
    )
    outcome = outcome_of(response)
    assert outcome["status"] == "rejected"
    assert "not one Bob is allowed to contact" in outcome["reason"]
    assert connector.calls == []


async def test_retried_handoff_returns_first_outcome_and_greets_once(
    http: httpx.AsyncClient, bob: RunningBot, connector: StandInConnector, service_url: str
) -> None:
    payload = handoff(service_url)
    request = send_message({"data": payload}, message_id="same-message")
    first, second, third = await asyncio.gather(
        *(http.post(f"{bob.url}/a2a", headers=A2A_HEADERS, json=request) for _ in range(3))
    )
    later = await http.post(f"{bob.url}/a2a", headers=A2A_HEADERS, json=request)
    outcomes = [outcome_of(response) for response in (first, second, third, later)]
    assert all(outcome == outcomes[0] for outcome in outcomes)
    assert outcomes[0]["status"] == "delivered"
    assert len(connector.created()) == 1
    assert len(connector.sent()) == 1


async def test_raw_v03_message_send_with_a_data_part_is_accepted(
    http: httpx.AsyncClient, bob: RunningBot, connector: StandInConnector, service_url: str
) -> None:
    """What a bot built on the 0.3 SDK sends: method message/send, kind-tagged parts, no version header."""
    request = {
        "jsonrpc": "2.0",
        "id": "req-1",
        "method": "message/send",
        "params": {
            "message": {
                "kind": "message",
                "role": "user",
                "messageId": uuid.uuid4().hex,
                "parts": [{"kind": "data", "data": handoff(service_url)}],
            }
        },
    }
    response = await http.post(f"{bob.url}/a2a", json=request)
    body = response.json()
    assert "result" in body, body
    data = outcome_in(body)
    assert data["status"] == "delivered"
    assert len(connector.created()) == 1
