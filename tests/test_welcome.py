"""A user who adds the bot is welcomed in their personal chat, once."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ALICE_DESCRIPTION
from tests.harness import TeamsUser, started_bot
from tests.standins.connector import StandInConnector


def installed(service_url: str, conversation_id: str, user: TeamsUser) -> dict[str, Any]:
    """An installationUpdate as Teams posts it when a user adds the app in personal scope."""
    return {
        "type": "installationUpdate",
        "action": "add",
        "id": uuid.uuid4().hex,
        "channelId": "msteams",
        "serviceUrl": service_url,
        "from": {"id": user.user_id, "name": user.name, "aadObjectId": user.aad_object_id},
        "conversation": {"id": conversation_id, "conversationType": "personal", "tenantId": user.tenant_id},
        "recipient": {"id": "28:bot", "name": "bot"},
        "channelData": {"tenant": {"id": user.tenant_id}},
    }


async def test_adding_alice_gets_one_welcome_that_says_what_she_does(
    http: httpx.AsyncClient, connector: StandInConnector, service_url: str, state_dir: Path
) -> None:
    user = TeamsUser()
    async with started_bot("Alice", ALICE_DESCRIPTION, state_dir=state_dir) as alice:
        first = await http.post(f"{alice.url}/api/messages", json=installed(service_url, "a:dana", user))
        assert first.status_code == 200, first.text
        [welcome] = connector.sent("a:dana")
        assert welcome.text.startswith("**Alice:** Hello, I'm Alice: Travel and expenses")

        again = await http.post(f"{alice.url}/api/messages", json=installed(service_url, "a:dana", user))
        assert again.status_code == 200
        assert len(connector.sent("a:dana")) == 1, "a reinstall or redelivery is not welcomed twice"
