"""``python -m bot doctor --env-file env/alice.env``: check one instance's setup, a line per check.

Each line is PASS or FAIL with what was found and, for a failure, what to do. The exit code is 1
when anything failed. The checks talk to the real things: the store, the model provider (one tiny
tool-calling request), each peer (its card, then an authenticated no-op on its A2A endpoint), and
this instance's own public URL.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

import httpx
from a2a.client import A2ACardResolver, ClientCallInterceptor, ClientConfig, create_client
from a2a.types import GetTaskRequest
from a2a.utils.errors import A2AError, TaskNotFoundError
from agent_framework import FunctionTool, Message

from a2a_bridge.auth import PeerTokenInterceptor, SharedSecretSigner
from bot.config import Settings
from bot.credentials import BotCredential, app_identity, reason_of
from bot.manifest import ManifestError, build_manifest
from bot.model_client import build_chat_client
from bot.store import Store, StoreError

if TYPE_CHECKING:
    from microsoft_teams.apps import App


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{'PASS' if self.ok else 'FAIL'}  {self.name}: {self.detail}"
        return text if self.ok or not self.fix else f"{text}\n      fix: {self.fix}"


async def run_doctor(settings: Settings, *, env_file: str | None = None, out: TextIO = sys.stdout) -> int:
    checks = [
        Check(
            "settings",
            True,
            f"{env_file or 'environment'} is valid ({settings.bot_name}, "
            f"model {settings.model_provider}, {len(settings.peer_urls)} peer(s))",
        )
    ]
    checks.append(await _store(settings))
    # One Teams app (one token cache) for the checks that ask Entra, one HTTP client for the rest.
    teams = _teams_app(settings)
    checks.append(await _bot_token(settings, teams))
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=3.0)) as http:
        if settings.install_app_for_users and teams is not None:
            checks.append(await _graph_install(settings, teams, http))
        checks.append(await _model(settings))
        for url in settings.peer_urls:
            checks.append(await _peer(settings, http, url))
        checks.append(await _self_url(settings, http))
    checks.append(_manifest(settings))
    for check in checks:
        print(check.line(), file=out)
    failed = sum(not check.ok for check in checks)
    print(f"{len(checks) - failed} passed, {failed} failed", file=out)
    return 1 if failed else 0


async def _store(settings: Settings) -> Check:
    try:
        store = await Store.open(settings.resolved_state_url, bot_name=settings.bot_name)
    except StoreError as error:
        return Check("store", False, str(error), "point STATE_URL at a database this user can write")
    await store.close()
    return Check("store", True, "opened and written (schema current)")


_TOKEN_FIXES = {
    "invalid_client": "CLIENT_SECRET is wrong or expired: add a new client secret to the app "
    "registration (Certificates & secrets) and set its value as CLIENT_SECRET",
    "unauthorized_client": "CLIENT_ID is not known in that tenant: check CLIENT_ID and TENANT_ID "
    "against the app registration",
}


def _teams_app(settings: Settings) -> App | None:
    """The Teams SDK app the bot would build for its identity (None without CLIENT_ID)."""
    if not settings.client_id:
        return None
    from microsoft_teams.apps import App

    return App(**app_identity(settings))


async def _bot_token(settings: Settings, teams: App | None) -> Check:
    """The token every call to Teams needs: asked of Entra ID once, as the bot would ask."""
    name = "Bot Framework token"
    if teams is None:
        return Check(name, True, "no CLIENT_ID (local development): none needed")
    problem = await BotCredential(teams, configured=True).problem()
    kind = settings.credential_kind
    if problem is not None:
        if settings.client_secret is None:
            fix = (
                "check that this host has the managed identity (on App Service: Identity, with "
                "IDENTITY_ENDPOINT set), that its client id is CLIENT_ID (APP_TYPE=UserAssignedMSI) or "
                "MANAGED_IDENTITY_CLIENT_ID, and, for a federated credential, that the app registration "
                "trusts it (Certificates & secrets, Federated credentials)"
            )
        else:
            fix = _TOKEN_FIXES.get(
                problem, "check CLIENT_ID, CLIENT_SECRET and TENANT_ID against the app registration"
            )
        return Check(name, False, f"Entra ID issued none ({problem}; {kind})", fix)
    return Check(name, True, f"Entra ID issued one for the Bot Framework ({kind}, cloud {settings.cloud})")


async def _graph_install(settings: Settings, teams: App, http: httpx.AsyncClient) -> Check:
    """INSTALL_APP_FOR_USERS: the bot's Graph token carries the consented permission (asking Entra
    for it is the one harmless call), and the app is in the organisation's catalog."""
    from bot.app_install import GRANT_HINT, INSTALL_PERMISSION, INSTALL_ROLES, installer_for

    name = "Graph app installation"
    installer = installer_for(settings, teams, http)
    try:
        roles = await installer.roles(settings.tenant_id)
    except Exception as error:
        return Check(name, False, f"no Graph token ({reason_of(error)})", "fix the Bot Framework token first")
    if not INSTALL_ROLES & set(roles):
        granted = ", ".join(roles) or "none"
        return Check(
            name, False, f"the bot's Graph token lacks {INSTALL_PERMISSION} (has: {granted})", GRANT_HINT
        )
    try:
        catalog_id = await installer.catalog_id(settings.tenant_id)
    except httpx.HTTPError as error:
        status = error.response.status_code if isinstance(error, httpx.HTTPStatusError) else None
        return Check(
            name,
            False,
            f"the app could not be looked up in the catalog ({status or type(error).__name__})",
            "set TEAMS_APP_CATALOG_ID (Teams admin center > Manage apps > the app's App ID), or grant "
            "AppCatalog.Read.All",
        )
    if catalog_id is None:
        return Check(
            name,
            False,
            f"no app with id {settings.client_id} in the organisation's catalog",
            "upload the package (python -m bot manifest) in the Teams admin center > Manage apps",
        )
    return Check(name, True, f"{INSTALL_PERMISSION} consented; app {catalog_id} in the catalog")


async def _model(settings: Settings) -> Check:
    if settings.model_provider == "offline":
        return Check(
            "model",
            True,
            "built-in offline model (routes only; set OPENAI_* or AZURE_OPENAI_* for real answers)",
        )
    called: list[str] = []

    def ping(word: str) -> str:
        called.append(word)
        return "pong"

    tool = FunctionTool(
        name="ping",
        description="Answer a health check.",
        func=ping,
        input_model={"type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"]},
    )
    client = build_chat_client(settings, lambda: [])
    try:
        await client.get_response(
            [Message("user", ["Health check: call the ping tool with the word 'hello'."])],
            options={"tools": [tool], "tool_choice": "required"},
        )
    except Exception as error:
        return Check(
            "model",
            False,
            f"{settings.model_provider} request failed ({type(error).__name__})",
            "check the model settings (URL, key, model or deployment name) and that it is reachable",
        )
    if not called:
        return Check(
            "model",
            False,
            f"{settings.model_provider} answered but did not call the tool",
            "use a model that supports tool (function) calling",
        )
    return Check("model", True, f"{settings.model_provider} reachable and calls tools")


async def _peer(settings: Settings, http: httpx.AsyncClient, url: str) -> Check:
    name = f"peer {url}"
    try:
        card = await A2ACardResolver(http, url).get_agent_card()
    except (A2AError, httpx.HTTPError, ValueError) as error:
        return Check(
            name,
            False,
            f"agent card not fetchable ({type(error).__name__})",
            "check PEER_URLS and that the peer is running and reachable from here",
        )
    secret = settings.a2a_auth_secret.get_secret_value() if settings.a2a_auth_secret else None
    interceptors: list[ClientCallInterceptor] = (
        [PeerTokenInterceptor(SharedSecretSigner(secret, settings.bot_name))] if secret else []
    )
    client = await create_client(
        card, client_config=ClientConfig(streaming=False, httpx_client=http), interceptors=interceptors
    )
    try:
        await client.get_task(GetTaskRequest(id="doctor-ping"))
    except TaskNotFoundError:
        return Check(name, True, f"{card.name}: card fetched, A2A endpoint accepts our token")
    except A2AError as error:
        unauthorized = "401" in str(error)
        return Check(
            name,
            False,
            f"{card.name}: A2A endpoint refused the call ({type(error).__name__})",
            "use the same A2A_AUTH_SECRET on both bots"
            if unauthorized
            else "check the peer's logs; its /a2a endpoint is not answering as A2A",
        )
    return Check(name, True, f"{card.name}: card fetched, A2A endpoint answered")


async def _self_url(settings: Settings, http: httpx.AsyncClient) -> Check:
    url = f"{settings.bot_self_url}/.well-known/agent-card.json"
    try:
        response = await http.get(url)
        served = response.json().get("name") if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError) as error:
        return Check(
            "BOT_SELF_URL",
            False,
            f"{url} not reachable ({type(error).__name__})",
            "start the bot, and make BOT_SELF_URL its public URL (tunnel or ingress)",
        )
    if served != settings.bot_name:
        return Check(
            "BOT_SELF_URL",
            False,
            f"{url} serves {served!r}, not {settings.bot_name}",
            "BOT_SELF_URL must point at this instance",
        )
    return Check("BOT_SELF_URL", True, f"{url} serves {settings.bot_name}'s card")


def _manifest(settings: Settings) -> Check:
    if not settings.client_id:
        return Check("manifest", True, "no CLIENT_ID (local development): no Teams app package to check")
    try:
        manifest = build_manifest(settings)
    except ManifestError as error:
        return Check("manifest", False, str(error), "fix the named setting, then `python -m bot manifest`")
    bot_id = manifest["bots"][0]["botId"]
    return Check("manifest", bot_id == settings.client_id, f"bot id {bot_id} matches CLIENT_ID")
