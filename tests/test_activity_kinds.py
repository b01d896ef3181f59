"""Every kind of activity Teams sends gets a 2xx: the ones the bot acts on, the ones it ignores, and
the ones the Teams SDK's models do not know (which the SDK would answer with a 500, and Teams would
retry or show the user as an error). None of them makes the bot say anything or call the model."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ALICE_DESCRIPTION
from tests.harness import TeamsUser, started_bot
from tests.standins.connector import StandInConnector
from tests.standins.openai_server import StandInOpenAI

USER = TeamsUser()

KINDS: dict[str, dict[str, Any]] = {
    "installationUpdate remove": {"type": "installationUpdate", "action": "remove"},
    "installationUpdate add-upgrade": {"type": "installationUpdate", "action": "add-upgrade"},
    "installationUpdate remove-upgrade": {"type": "installationUpdate", "action": "remove-upgrade"},
    "conversationUpdate, bot added": {"type": "conversationUpdate", "membersAdded": [{"id": "28:bot"}]},
    "conversationUpdate, chat renamed": {"type": "conversationUpdate", "topicName": "Trips"},
    "messageDelete": {
        "type": "messageDelete",
        "channelData": {"eventType": "softDeleteMessage", "tenant": {"id": USER.tenant_id}},
    },
    "messageReaction": {"type": "messageReaction", "reactionsAdded": [{"type": "like"}]},
    "typing": {"type": "typing"},
    "endOfConversation (not modelled by the SDK)": {"type": "endOfConversation"},
    "invoke composeExtension/query": {"type": "invoke", "name": "composeExtension/query", "value": {}},
    "invoke task/fetch": {"type": "invoke", "name": "task/fetch", "value": {}},
    "invoke config/fetch": {"type": "invoke", "name": "config/fetch", "value": {}},
    "invoke signin/verifyState (no sign-in flow exists)": {
        "type": "invoke",
        "name": "signin/verifyState",
        "value": {"state": "123456"},
    },
    "invoke of a feature Teams added later": {"type": "invoke", "name": "meeting/newThing", "value": {}},
}


def activity(service_url: str, **kind: Any) -> dict[str, Any]:
    return {
        "id": uuid.uuid4().hex,
        "channelId": "msteams",
        "serviceUrl": service_url,
        "from": {"id": USER.user_id, "name": USER.name, "aadObjectId": USER.aad_object_id},
        "conversation": {"id": "a:dana", "conversationType": "personal", "tenantId": USER.tenant_id},
        "recipient": {"id": "28:alice", "name": "Alice"},
        "channelData": {"tenant": {"id": USER.tenant_id}},
        **kind,
    }


@pytest.mark.parametrize("kind", list(KINDS))
async def test_each_kind_of_activity_teams_sends_gets_a_2xx_and_no_reply(
    kind: str,
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    service_url: str,
    state_dir: Path,
) -> None:
    async with started_bot("Alice", ALICE_DESCRIPTION, state_dir=state_dir) as alice:
        response = await http.post(f"{alice.url}/api/messages", json=activity(service_url, **KINDS[kind]))
        assert 200 <= response.status_code < 300, (response.status_code, response.text)
        alive = await http.get(f"{alice.url}/healthz")
    assert alive.status_code == 200
    assert connector.sent("a:dana") == []
    assert llm.requests == []


async def test_an_activity_the_sdk_cannot_model_is_authenticated_before_it_is_acknowledged(
    http: httpx.AsyncClient, service_url: str, state_dir: Path
) -> None:
    """The gate answers these itself, so it asks the SDK's own token check first: without a token
    Teams signed, an upgrade notice gets the same 401 a message would."""
    async with started_bot(
        "Alice",
        ALICE_DESCRIPTION,
        state_dir=state_dir,
        dangerously_allow_unauthenticated_requests=False,
        client_id="00000000-0000-0000-0000-0000000a11ce",
        tenant_id="tenant-contoso",
        client_secret="alice-app-secret",
    ) as alice:
        upgrade = activity(service_url, type="installationUpdate", action="add-upgrade")
        unsigned = await http.post(f"{alice.url}/api/messages", json=upgrade)
        forged = await http.post(
            f"{alice.url}/api/messages", json=upgrade, headers={"Authorization": "Bearer not.a.token"}
        )
    assert unsigned.status_code == 401
    assert forged.status_code == 401


async def test_a_malformed_activity_of_an_unknown_kind_is_still_a_400(
    http: httpx.AsyncClient, service_url: str, state_dir: Path
) -> None:
    async with started_bot("Alice", ALICE_DESCRIPTION, state_dir=state_dir) as alice:
        body = {**activity(service_url, type="endOfConversation"), "serviceUrl": "not a url"}
        response = await http.post(f"{alice.url}/api/messages", json=body)
    assert response.status_code == 400
    assert "serviceUrl" in response.json()["error"]
