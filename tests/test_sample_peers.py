"""What bots built on Microsoft's Teams A2A sample send us (../shared/sample-wire.md): a 0.3
`message/send` without a token, a handoff with neither `handoffId` nor `hops`, the card looked up
under `/a2a`. Our Bob takes it (local development: the sample sends no token)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import BOB_DESCRIPTION
from tests.harness import RunningBot, outcome_in, started_bot
from tests.standins.connector import StandInConnector
from tests.standins.sample_peer import sample_send


@pytest.fixture
async def bob(state_dir: Path) -> Any:
    async with started_bot("Bob", BOB_DESCRIPTION, state_dir=state_dir) as running:
        yield running


def sample_handoff(service_url: str, message_id: str) -> dict[str, Any]:
    """The sample's request, field for field, as its stand-in sends it (no A2A-Version header)."""
    handoff = {
        "kind": "handoff",
        "from": "Alice",
        "userName": "Dana Smith",
        "aadObjectId": "aad-dana-0001",
        "tenantId": "tenant-contoso",
        "serviceUrl": service_url,
        "summary": "Dana's VPN keeps disconnecting.",
    }
    return sample_send(handoff, message_id=message_id)


async def test_the_card_is_also_where_the_sample_looks_for_it(
    http: httpx.AsyncClient, bob: RunningBot
) -> None:
    under_a2a = await http.get(f"{bob.url}/a2a/.well-known/agent-card.json")
    at_root = await http.get(f"{bob.url}/.well-known/agent-card.json")
    assert under_a2a.status_code == 200 and under_a2a.json() == at_root.json()


async def test_a_handoff_from_a_sample_bot_without_handoff_id_or_hops_greets_the_user_once(
    http: httpx.AsyncClient, connector: StandInConnector, service_url: str, bob: RunningBot
) -> None:
    message_id = str(uuid.uuid4())
    first = await http.post(f"{bob.url}/a2a", json=sample_handoff(service_url, message_id))
    assert first.status_code == 200, first.text
    outcome = outcome_in(first.json())
    assert outcome["kind"] == "handoffOutcome" and outcome["status"] == "delivered"
    [greeting] = [call for call in connector.sent() if call.conversation_id == outcome["conversationId"]]
    assert "Dana's VPN keeps disconnecting." in greeting.text

    retry = await http.post(f"{bob.url}/a2a", json=sample_handoff(service_url, message_id))
    again = outcome_in(retry.json())
    assert again["handoffId"] == outcome["handoffId"], "the same message is the same handoff"
    assert len(connector.created()) == 1 and len(connector.sent()) == 1, "greeted once"


async def test_with_a2a_auth_on_the_card_under_a2a_stays_public_and_calls_still_need_a_token(
    http: httpx.AsyncClient, service_url: str, state_dir: Path
) -> None:
    secret = "s" * 40
    async with started_bot("Bob", BOB_DESCRIPTION, state_dir=state_dir, a2a_auth_secret=secret) as bob:
        card = await http.get(f"{bob.url}/a2a/.well-known/agent-card.json")
        assert card.status_code == 200 and card.json()["name"] == "Bob"
        call = await http.post(f"{bob.url}/a2a", json=sample_handoff(service_url, str(uuid.uuid4())))
        assert call.status_code == 401


async def test_fields_a_peer_adds_that_we_do_not_know_are_ignored_not_refused(
    http: httpx.AsyncClient, connector: StandInConnector, service_url: str, bob: RunningBot
) -> None:
    request = sample_handoff(service_url, str(uuid.uuid4()))
    data = request["params"]["message"]["parts"][0]["data"]
    data.update({"priority": 3, "channel": {"name": "msteams"}, "locale": "de-DE"})
    response = await http.post(f"{bob.url}/a2a", json=request)
    outcome = outcome_in(response.json())
    assert outcome["status"] == "delivered"
    assert len(connector.sent()) == 1
