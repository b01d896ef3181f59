"""A bot whose client secret Entra rejects: the message it accepted is not lost (no 5xx, no
apology it cannot send), the log says what is wrong without the secret, and the turn is answered
once the credential works again. Entra and the Bot Framework's keys are stand-ins reached through an
HTTPS proxy on loopback (tests/standins/entra.py); every connector call carries a token for the Bot
Framework's scope."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.harness import message_activity
from tests.processes import BotProcess, process_env, spawn_bot
from tests.standins.connector import StandInConnector
from tests.standins.entra import BOT_SCOPE, StandInEntra
from tests.standins.openai_server import StandInOpenAI
from tests.test_resilience import echo, process_llm_env

APP_ID = "00000000-0000-0000-0000-0000000a11ce"
TENANT_ID = "tenant-contoso"
CLIENT_SECRET = "alice-client-secret-value-that-must-never-be-logged"


def alice_with_credentials(llm_server: Any, tmp_path: Path, entra: StandInEntra) -> BotProcess:
    settings = {
        **process_llm_env(llm_server, "alice-model", tmp_path / "a.db"),
        "CLIENT_ID": APP_ID,
        "TENANT_ID": TENANT_ID,
        "CLIENT_SECRET": CLIENT_SECRET,
        "DANGEROUSLY_ALLOW_UNAUTHENTICATED_REQUESTS": "false",
        **entra.environment(),
    }
    return BotProcess("Alice", settings, tmp_path)


async def test_a_rejected_secret_keeps_the_turn_until_the_credential_works_and_it_is_answered_once(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_server: Any,
    service_url: str,
    tmp_path: Path,
    entra: StandInEntra,
) -> None:
    llm.script("alice-model", echo)
    alice = alice_with_credentials(llm_server, tmp_path, entra)
    await alice.start()
    try:
        teams = {"Authorization": f"Bearer {entra.activity_token(app_id=APP_ID, service_url=service_url)}"}
        activity = message_activity(
            "Book me a train to Lyon", conversation_id="a:dana", service_url=service_url
        )
        response = await http.post(f"{alice.url}/api/messages", json=activity, headers=teams)
        assert response.status_code == 200, "accepted and kept: never a 5xx after the claim"
        waiting = await alice.wait_for_event("turn_waiting_for_credential")
        assert waiting["reason"] == "invalid_client", "Entra's error code (the SDK keeps no AADSTS number)"
        assert connector.sent("a:dana") == []

        entra.secret = CLIENT_SECRET  # rotated in the vault, or Entra recovered
        await connector.wait_for(
            lambda c: (
                [call.text for call in c.sent("a:dana")] == ["**Alice:** echo: Book me a train to Lyon"]
            ),
            within=30,
        )
        marker = message_activity("marker", conversation_id="a:dana", service_url=service_url)
        assert (await http.post(f"{alice.url}/api/messages", json=marker, headers=teams)).status_code == 200
        # An activity the SDK cannot model, signed by Teams: acknowledged, after the SDK's own check.
        upgrade = {**marker, "type": "installationUpdate", "action": "add-upgrade", "id": "upgrade-1"}
        assert (await http.post(f"{alice.url}/api/messages", json=upgrade, headers=teams)).status_code == 200
        await connector.wait_for(lambda c: len(c.sent("a:dana")) == 2)
        assert [call.text for call in connector.sent("a:dana")] == [
            "**Alice:** echo: Book me a train to Lyon",
            "**Alice:** echo: marker",
        ]
        for call in connector.calls:
            assert call.authorization is not None and call.authorization.startswith("Bearer ")
            claims = jwt.decode(
                call.authorization.removeprefix("Bearer "), options={"verify_signature": False}
            )
            assert claims["aud"] == BOT_SCOPE.removesuffix("/.default")
        assert entra.issued_tokens_for(BOT_SCOPE) >= 2
        assert {request.tenant for request in entra.token_requests} == {TENANT_ID}, "single-tenant"
        assert CLIENT_SECRET not in str(alice.log)
    finally:
        await alice.stop()


async def test_readyz_says_no_token_can_be_had_with_entras_code_and_asks_entra_once_per_window(
    http: httpx.AsyncClient, llm_server: Any, tmp_path: Path, entra: StandInEntra
) -> None:
    alice = alice_with_credentials(llm_server, tmp_path, entra)
    await alice.start()
    try:
        first = await http.get(f"{alice.url}/readyz")
        asked = len(entra.token_requests)
        second = await http.get(f"{alice.url}/readyz")
        assert first.status_code == second.status_code == 503
        assert first.json()["credential"] == "no Bot Framework token: invalid_client"
        assert len(entra.token_requests) == asked, "the second probe was answered from the last check"
        metrics = (await http.get(f"{alice.url}/metrics")).text
        assert 'bot_token_failures_total{reason="invalid_client"}' in metrics
        assert CLIENT_SECRET not in first.text + metrics + str(alice.log)
    finally:
        await alice.stop()


@pytest.mark.parametrize("accepted", [False, True], ids=["rejected", "accepted"])
async def test_doctor_asks_entra_for_a_token_and_names_the_fix_for_a_rejected_secret(
    tmp_path: Path, entra: StandInEntra, accepted: bool
) -> None:
    entra.secret = CLIENT_SECRET if accepted else "the-secret-entra-has-now"
    env = process_env(
        BOT_NAME="Alice",
        BOT_DESCRIPTION="Travel desk",
        BOT_SELF_URL="http://127.0.0.1:9",
        LOCAL_DEVELOPMENT="true",
        CLIENT_ID=APP_ID,
        TENANT_ID=TENANT_ID,
        CLIENT_SECRET=CLIENT_SECRET,
        STATE_URL=f"sqlite+aiosqlite:///{tmp_path / 'doctor.db'}",
        **entra.environment(),
    )
    process = await spawn_bot("doctor", cwd=tmp_path, env=env)
    stdout, _ = await asyncio.wait_for(process.communicate(), 60)
    report = stdout.decode()
    if accepted:
        assert "PASS  Bot Framework token: Entra ID issued one for the Bot Framework" in report
    else:
        assert "FAIL  Bot Framework token: Entra ID issued none (invalid_client; client secret)" in report
        assert "fix: CLIENT_SECRET is wrong or expired" in report
    assert CLIENT_SECRET not in report
