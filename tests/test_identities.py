"""The identities Azure issues bots today, each exercised offline through the same stand-ins a real
tenant's would be: a user-assigned managed identity (App Service's managed-identity endpoint), an
app registration with a federated credential backed by a managed identity, and a single-tenant bot
in GCC High with its cloud named only in its env file. In each, every call to the Bot Connector
carries a token for the Bot Framework of the bot's cloud, and the Teams message is answered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from bot.config import Settings
from tests.harness import message_activity
from tests.processes import BotProcess
from tests.standins.connector import StandInConnector
from tests.standins.entra import JWT_BEARER, TOKEN_EXCHANGE, StandInEntra
from tests.standins.openai_server import StandInOpenAI
from tests.test_resilience import echo, process_llm_env

APP_ID = "00000000-0000-0000-0000-0000000a11ce"
IDENTITY_ID = "11111111-2222-3333-4444-555555555555"
TENANT_ID = "tenant-contoso"


async def answered_once(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    alice: BotProcess,
    entra: StandInEntra,
    *,
    app_id: str,
    service_url: str,
    issuer: str = "https://api.botframework.com",
) -> None:
    token = entra.activity_token(app_id=app_id, service_url=service_url, issuer=issuer)
    activity = message_activity("Book me a train to Lyon", conversation_id="a:dana", service_url=service_url)
    response = await http.post(
        f"{alice.url}/api/messages", json=activity, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    await connector.wait_for(lambda c: len(c.sent("a:dana")) == 1, within=30)
    [reply] = connector.sent("a:dana")
    assert reply.text == "**Alice:** echo: Book me a train to Lyon"


def audiences(connector: StandInConnector) -> set[str]:
    found = set()
    for call in connector.calls:
        assert call.authorization is not None and call.authorization.startswith("Bearer "), call.kind
        claims = jwt.decode(call.authorization.removeprefix("Bearer "), options={"verify_signature": False})
        found.add(claims["aud"])
    return found


async def test_a_bot_whose_identity_is_a_user_assigned_managed_identity_needs_no_secret(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_server: Any,
    service_url: str,
    tmp_path: Path,
    entra: StandInEntra,
) -> None:
    llm.script("alice-model", echo)
    settings = {
        **process_llm_env(llm_server, "alice-model", tmp_path / "a.db"),
        "APP_TYPE": "UserAssignedMSI",
        "CLIENT_ID": IDENTITY_ID,
        "TENANT_ID": TENANT_ID,
        "DANGEROUSLY_ALLOW_UNAUTHENTICATED_REQUESTS": "false",
        **entra.environment(managed_identity=True),
    }
    alice = await BotProcess("Alice", settings, tmp_path).start()
    try:
        await answered_once(http, connector, alice, entra, app_id=IDENTITY_ID, service_url=service_url)
        ready = (await http.get(f"{alice.url}/readyz")).json()
    finally:
        await alice.stop()
    assert audiences(connector) == {"https://api.botframework.com"}
    asked = {(request.resource, request.client_id, request.header_ok) for request in entra.identity_requests}
    assert ("https://api.botframework.com", IDENTITY_ID, True) in asked
    assert entra.token_requests == [], "no client credentials flow: the identity endpoint issued the token"
    assert ready["credential"] == "ok (user-assigned managed identity)"


async def test_an_app_with_a_federated_credential_trades_the_managed_identitys_token_for_its_own(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_server: Any,
    service_url: str,
    tmp_path: Path,
    entra: StandInEntra,
) -> None:
    llm.script("alice-model", echo)
    settings = {
        **process_llm_env(llm_server, "alice-model", tmp_path / "a.db"),
        "CLIENT_ID": APP_ID,
        "MANAGED_IDENTITY_CLIENT_ID": IDENTITY_ID,
        "TENANT_ID": TENANT_ID,
        "DANGEROUSLY_ALLOW_UNAUTHENTICATED_REQUESTS": "false",
        **entra.environment(managed_identity=True),
    }
    alice = await BotProcess("Alice", settings, tmp_path).start()
    try:
        await answered_once(http, connector, alice, entra, app_id=APP_ID, service_url=service_url)
        ready = (await http.get(f"{alice.url}/readyz")).json()
    finally:
        await alice.stop()
    assert audiences(connector) == {"https://api.botframework.com"}
    assert (TOKEN_EXCHANGE, IDENTITY_ID, True) in {
        (request.resource, request.client_id, request.header_ok) for request in entra.identity_requests
    }
    [exchange, *_] = entra.token_requests
    assert exchange.tenant == TENANT_ID
    assert exchange.form["client_id"] == APP_ID
    assert exchange.form["client_assertion_type"] == JWT_BEARER
    assert "client_secret" not in exchange.form
    assert ready["credential"] == "ok (federated credential (user-assigned managed identity))"


async def test_a_gcc_high_bot_named_so_only_in_its_env_file_uses_that_clouds_endpoints(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_server: Any,
    service_url: str,
    tmp_path: Path,
    entra: StandInEntra,
) -> None:
    llm.script("alice-model", echo)
    env_file = tmp_path / "alice.env"
    env_file.write_text("CLOUD=USGovHigh\n")
    settings = {
        **process_llm_env(llm_server, "alice-model", tmp_path / "a.db"),
        "CLIENT_ID": APP_ID,
        "CLIENT_SECRET": "alice-secret",
        "TENANT_ID": TENANT_ID,
        "DANGEROUSLY_ALLOW_UNAUTHENTICATED_REQUESTS": "false",
        **entra.environment(),
    }
    entra.secret = "alice-secret"
    alice = await BotProcess("Alice", settings, tmp_path, args=("--env-file", str(env_file))).start()
    try:
        await answered_once(
            http,
            connector,
            alice,
            entra,
            app_id=APP_ID,
            service_url=service_url,
            issuer="https://api.botframework.us",
        )
    finally:
        await alice.stop()
    assert audiences(connector) == {"https://api.botframework.us"}
    assert {request.host for request in entra.token_requests} == {"login.microsoftonline.us"}
    assert "login.botframework.azure.us" in entra.tunnels, "Teams' keys fetched from that cloud"
    assert "login.microsoftonline.com" not in entra.tunnels


@pytest.mark.parametrize(
    ("cloud", "hosts", "chat_origin"),
    [
        ("Public", ["smba.trafficmanager.net"], "https://teams.microsoft.com"),
        ("usgov", ["smba.infra.gcc.teams.microsoft.com"], "https://teams.microsoft.com"),
        ("USGovHigh", ["smba.infra.gov.teams.microsoft.us"], "https://gov.teams.microsoft.us"),
        ("USGovDoD", ["smba.infra.dod.teams.microsoft.us"], "https://dod.teams.microsoft.us"),
    ],
)
def test_each_cloud_brings_its_teams_hosts_as_the_default_allowlist(
    cloud: str, hosts: list[str], chat_origin: str
) -> None:
    settings = Settings(
        _env_file=None,
        bot_name="Alice",
        bot_description="Travel",
        bot_self_url="http://127.0.0.1:3978",
        local_development=True,
        cloud=cloud,
    )
    assert settings.service_url_allowlist == hosts
    assert settings.cloud_profile.teams_web == chat_origin
