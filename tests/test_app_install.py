"""A user who has Alice but not Bob: Bob's create-conversation gets 403, so Bob installs his own app
for that user through Microsoft Graph and opens the chat. Without the Graph permission the user is
told the truth as before, and the log says what an administrator must grant. Graph and Entra are
stand-ins on their public names (tests/standins/graph.py, tests/standins/entra.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import BOB_DESCRIPTION
from tests.harness import outcome_in
from tests.processes import BotProcess, process_env, spawn_bot
from tests.standins.connector import StandInConnector
from tests.standins.entra import StandInEntra
from tests.standins.graph import StandInGraph
from tests.test_a2a_endpoint import A2A_HEADERS, handoff, send_message

BOB_APP_ID = "00000000-0000-0000-0000-000000000b0b"
TENANT_ID = "tenant-contoso"
SECRET = "bob-client-secret"
INSTALL = "TeamsAppInstallation.ReadWriteSelfForUser.All"
DANA = "aad-dana-0001"


@pytest.fixture
def graph() -> StandInGraph:
    return StandInGraph(catalog={"catalog-bob": BOB_APP_ID, "catalog-other": "another-app"})


@pytest.fixture
async def entra(tmp_path: Path, graph: StandInGraph) -> AsyncIterator[StandInEntra]:
    standin = await StandInEntra(tmp_path / "entra", secret=SECRET, graph_routes=graph.routes()).start()
    yield standin
    await standin.stop()


def bob_settings(tmp_path: Path, entra: StandInEntra) -> dict[str, str]:
    return {
        "BOT_DESCRIPTION": BOB_DESCRIPTION,
        "STATE_URL": f"sqlite+aiosqlite:///{tmp_path / 'b.db'}",
        "CLIENT_ID": BOB_APP_ID,
        "CLIENT_SECRET": SECRET,
        "TENANT_ID": TENANT_ID,
        "INSTALL_APP_FOR_USERS": "true",
        "DANGEROUSLY_ALLOW_UNAUTHENTICATED_REQUESTS": "false",
        **entra.environment(),
    }


async def test_bob_installs_his_app_for_a_user_who_lacks_it_and_greets_them(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    service_url: str,
    tmp_path: Path,
    entra: StandInEntra,
    graph: StandInGraph,
) -> None:
    entra.graph_roles = [INSTALL, "AppCatalog.Read.All"]
    connector.fail("create_conversation", 403, times=1)  # until the app is installed for Dana
    bob = await BotProcess("Bob", bob_settings(tmp_path, entra), tmp_path).start()
    try:
        response = await http.post(
            f"{bob.url}/a2a", headers=A2A_HEADERS, json=send_message({"data": handoff(service_url)})
        )
        outcome = outcome_in(response.json())
        installed = await bob.wait_for_event("app_installed_for_user")
    finally:
        await bob.stop()
    assert outcome["status"] == "delivered", outcome
    assert graph.installed_for(DANA) == ["catalog-bob"], "looked up by Bob's app id, installed once"
    assert installed["result"] == "installed"
    [greeting] = connector.sent(outcome["conversationId"])
    assert greeting.text.startswith("**Bob:**")
    assert [call.returned_id is None for call in connector.created()] == [True, False], "403, then opened"
    assert SECRET not in str(bob.log)


async def test_without_the_graph_permission_the_user_hears_the_truth_and_the_log_names_the_grant(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    service_url: str,
    tmp_path: Path,
    entra: StandInEntra,
    graph: StandInGraph,
) -> None:
    entra.graph_roles = ["User.Read.All"]  # consented, but not the one that installs apps
    connector.fail("create_conversation", 403, times=5)
    bob = await BotProcess(
        "Bob", {**bob_settings(tmp_path, entra), "TEAMS_APP_CATALOG_ID": "catalog-bob"}, tmp_path
    ).start()
    try:
        response = await http.post(
            f"{bob.url}/a2a", headers=A2A_HEADERS, json=send_message({"data": handoff(service_url)})
        )
        outcome = outcome_in(response.json())
        refused = await bob.wait_for_event("app_install_refused")
    finally:
        await bob.stop()
    assert outcome["status"] == "failed"
    assert outcome["reasonCode"] == "not_installed"
    assert "not installed for you" in outcome["reason"]
    assert refused["reason"] == "Graph 403 Forbidden"
    assert INSTALL in refused["fix"] and "admin consent" in refused["fix"]
    assert graph.installations == []
    assert len(connector.created()) == 1, "no retries of a chat that cannot open"
    assert graph.requests == [("POST", f"/v1.0/users/{DANA}/teamwork/installedApps")], "no catalog lookup"


@pytest.mark.parametrize("consented", [True, False], ids=["consented", "not-consented"])
async def test_doctor_checks_the_graph_permission_and_the_catalog_when_installing_is_on(
    tmp_path: Path, entra: StandInEntra, consented: bool
) -> None:
    entra.graph_roles = [INSTALL, "AppCatalog.Read.All"] if consented else []
    env = process_env(
        BOT_NAME="Bob",
        BOT_DESCRIPTION="IT desk",
        BOT_SELF_URL="http://127.0.0.1:9",
        LOCAL_DEVELOPMENT="true",
        **{key: value for key, value in bob_settings(tmp_path, entra).items() if key != "BOT_DESCRIPTION"},
    )
    process = await spawn_bot("doctor", cwd=tmp_path, env=env)
    stdout, _ = await asyncio.wait_for(process.communicate(), 60)
    report = stdout.decode()
    if consented:
        assert f"PASS  Graph app installation: {INSTALL} consented; app catalog-bob in the catalog" in report
    else:
        assert f"FAIL  Graph app installation: the bot's Graph token lacks {INSTALL} (has: none)" in report
        assert "admin consent" in report
    assert SECRET not in report
