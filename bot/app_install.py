"""Installing this bot's own Teams app for a user who does not have it, through Microsoft Graph.

The most common reason a proactive 1:1 cannot be opened is that the user added Alice but never
Bob: Teams answers Bob's create-conversation with 403. With ``INSTALL_APP_FOR_USERS`` on, Bob then
installs his app for that user (``POST /users/{aadObjectId}/teamwork/installedApps``, application
permission ``TeamsAppInstallation.ReadWriteSelfForUser.All``, admin-consented) and tries again.
The Graph token comes from the bot's own credential, for the user's tenant. Every way this can go
wrong ends in a typed result the greeter turns into the user's usual message, and a log line that
says what an administrator must do.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import structlog
from microsoft_teams.apps import App

from bot.config import Settings

log = structlog.get_logger(__name__)

INSTALL_PERMISSION = "TeamsAppInstallation.ReadWriteSelfForUser.All"
# Either of these lets the bot install itself; the first is the narrow one to grant.
INSTALL_ROLES = frozenset({INSTALL_PERMISSION, "TeamsAppInstallation.ReadWriteForUser.All"})
CATALOG_ROLES = frozenset({"AppCatalog.Read.All", "AppCatalog.ReadWrite.All"})
GRANT_HINT = (
    f"grant the bot's app registration the Microsoft Graph application permission {INSTALL_PERMISSION} "
    "and give admin consent (Entra ID > App registrations > API permissions)"
)


class Installed(StrEnum):
    INSTALLED = "installed"
    ALREADY = "already_installed"
    NOT_PERMITTED = "not_permitted"
    NOT_IN_CATALOG = "not_in_catalog"
    FAILED = "failed"


@dataclass(frozen=True)
class InstallResult:
    result: Installed
    detail: str = ""

    @property
    def worth_retrying(self) -> bool:
        """The app is there now: opening the chat again may work."""
        return self.result in (Installed.INSTALLED, Installed.ALREADY)


class AppInstaller:
    def __init__(
        self,
        *,
        app: App,
        http: httpx.AsyncClient,
        graph_url: str,
        graph_scope: str,
        external_id: str,
        catalog_id: str | None,
    ) -> None:
        """``external_id``: the id in the app's manifest (CLIENT_ID); ``catalog_id``: the app's id in
        the organisation's catalog, looked up from the external id when not given."""
        self._app = app
        self._http = http
        self._graph = f"{graph_url.rstrip('/')}/v1.0"
        self._scope = graph_scope
        self._external_id = external_id
        self._catalog_id = catalog_id

    async def install_for(self, aad_object_id: str, tenant_id: str) -> InstallResult:
        result = await self._install(aad_object_id, tenant_id)
        if result.result is Installed.NOT_PERMITTED:
            log.error("app_install_refused", reason=result.detail, fix=GRANT_HINT)
        elif not result.worth_retrying:
            log.warning("app_install_failure", result=result.result.value, reason=result.detail)
        else:
            log.info("app_installed_for_user", result=result.result.value)
        return result

    async def roles(self, tenant_id: str | None = None) -> list[str]:
        """The Graph application permissions the bot's token carries (what an admin consented to)."""
        token = await self._token(tenant_id)
        claims = jwt.decode(token, options={"verify_signature": False})
        return [str(role) for role in claims.get("roles", [])]

    async def catalog_id(self, tenant_id: str | None = None) -> str | None:
        if self._catalog_id is None:
            response = await self._http.get(
                f"{self._graph}/appCatalogs/teamsApps",
                params={"$filter": f"externalId eq '{self._external_id}'"},
                headers={"Authorization": f"Bearer {await self._token(tenant_id)}"},
            )
            response.raise_for_status()
            apps = response.json().get("value", [])
            self._catalog_id = str(apps[0]["id"]) if apps else None
        return self._catalog_id

    async def _install(self, aad_object_id: str, tenant_id: str) -> InstallResult:
        try:
            catalog_id = await self.catalog_id(tenant_id)
        except httpx.HTTPStatusError as error:
            refused = _refused(error.response)
            return InstallResult(
                refused.result,
                f"looking the app up in the catalog: {refused.detail} (set TEAMS_APP_CATALOG_ID, or "
                "grant AppCatalog.Read.All)",
            )
        except Exception as error:
            return InstallResult(Installed.FAILED, type(error).__name__)
        try:
            if catalog_id is None:
                return InstallResult(
                    Installed.NOT_IN_CATALOG,
                    f"no app with id {self._external_id} in the organisation's catalog (upload it, or "
                    "set TEAMS_APP_CATALOG_ID)",
                )
            response = await self._http.post(
                f"{self._graph}/users/{quote(aad_object_id, safe='')}/teamwork/installedApps",
                json={"teamsApp@odata.bind": f"{self._graph}/appCatalogs/teamsApps/{catalog_id}"},
                headers={"Authorization": f"Bearer {await self._token(tenant_id)}"},
            )
        except httpx.HTTPStatusError as error:
            return _refused(error.response)
        except Exception as error:  # no Graph token, Graph unreachable: the user hears the usual
            return InstallResult(Installed.FAILED, type(error).__name__)
        if response.status_code == 201:
            return InstallResult(Installed.INSTALLED)
        if response.status_code == 409:
            return InstallResult(Installed.ALREADY)
        return _refused(response)

    async def _token(self, tenant_id: str | None) -> str:
        token = await self._app.token_provider.get_app_token(self._scope, tenant_id)
        if token is None:
            raise RuntimeError("no Graph token")
        return str(token)


def installer_for(settings: Settings, app: App, http: httpx.AsyncClient) -> AppInstaller:
    assert settings.client_id is not None, "INSTALL_APP_FOR_USERS needs CLIENT_ID (checked in Settings)"
    cloud = settings.cloud_profile
    return AppInstaller(
        app=app,
        http=http,
        graph_url=cloud.graph_url,
        graph_scope=cloud.sdk_environment().graph_scope,
        external_id=settings.client_id,
        catalog_id=settings.teams_app_catalog_id,
    )


def _refused(response: httpx.Response) -> InstallResult:
    code = _graph_error_code(response)
    if response.status_code in (401, 403):
        return InstallResult(Installed.NOT_PERMITTED, f"Graph {response.status_code} {code}")
    if response.status_code == 404:
        return InstallResult(Installed.NOT_IN_CATALOG, f"Graph 404 {code}")
    return InstallResult(Installed.FAILED, f"Graph {response.status_code} {code}")


def _graph_error_code(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("code", ""))[:60] if isinstance(error, dict) else ""
