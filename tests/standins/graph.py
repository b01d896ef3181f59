"""Microsoft Graph's Teams app installation endpoints, as a bot reaches them: on graph.microsoft.com,
through the HTTPS proxy of ``tests/standins/entra.py`` (which serves these routes on Graph's hosts).

Shapes follow Graph v1.0: ``POST /users/{id}/teamwork/installedApps`` with a ``teamsApp@odata.bind``
answers 201 with no body, 409 ``Conflict`` when the app is installed already, 403 ``Forbidden``
naming the roles it needs when the token has none of them; ``GET /appCatalogs/teamsApps`` with an
``externalId`` filter lists the organisation's copy of an app. The token's ``roles`` claim (what an
admin consented to) is read as Graph reads it; the stand-in Entra writes it from ``graph_roles``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

INSTALL_ROLES = ("TeamsAppInstallation.ReadWriteSelfForUser.All", "TeamsAppInstallation.ReadWriteForUser.All")
CATALOG_ROLES = ("AppCatalog.Read.All", "AppCatalog.ReadWrite.All")
_EXTERNAL_ID_FILTER = re.compile(r"^externalId eq '([^']+)'$")


@dataclass
class Installation:
    user: str
    catalog_id: str
    roles: tuple[str, ...]


@dataclass
class StandInGraph:
    catalog: dict[str, str] = field(default_factory=dict)
    """The organisation's app catalog: catalog id -> external id (the manifest's id)."""
    installations: list[Installation] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    """(method, path) of every request, in order."""
    on_install: Callable[[Installation], None] | None = None

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1.0/users/{user}/teamwork/installedApps", self._install, methods=["POST"]),
            Route("/v1.0/appCatalogs/teamsApps", self._catalog, methods=["GET"]),
        ]

    def installed_for(self, user: str) -> list[str]:
        return [item.catalog_id for item in self.installations if item.user == user]

    async def _install(self, request: Request) -> Response:
        self.requests.append(("POST", request.url.path))
        roles = _roles(request)
        if roles is None:
            return _error(401, "InvalidAuthenticationToken", "Access token is empty or not valid.")
        if not set(roles) & set(INSTALL_ROLES):
            return _error(
                403,
                "Forbidden",
                "Missing role permissions on the request. API requires one of "
                f"'{', '.join(INSTALL_ROLES)}'. Roles on the request '{', '.join(roles)}'.",
            )
        body = await request.json()
        bound = str(body.get("teamsApp@odata.bind", ""))
        catalog_id = bound.rsplit("/", 1)[-1]
        if not bound.startswith(f"https://{request.url.hostname}/v1.0/appCatalogs/teamsApps/") or (
            catalog_id not in self.catalog
        ):
            return _error(404, "NotFound", "The Teams app was not found in the catalog.")
        user = request.path_params["user"]
        if catalog_id in self.installed_for(user):
            return _error(409, "Conflict", "App is already installed for this user.")
        installation = Installation(user, catalog_id, tuple(roles))
        self.installations.append(installation)
        if self.on_install is not None:
            self.on_install(installation)
        return Response(status_code=201)

    async def _catalog(self, request: Request) -> Response:
        self.requests.append(("GET", request.url.path))
        roles = _roles(request)
        if roles is None:
            return _error(401, "InvalidAuthenticationToken", "Access token is empty or not valid.")
        if not set(roles) & set(CATALOG_ROLES):
            return _error(403, "Forbidden", "Missing role permissions on the request.")
        wanted = _EXTERNAL_ID_FILTER.match(request.query_params.get("$filter", ""))
        apps = [
            {"id": catalog_id, "externalId": external, "distributionMethod": "organization"}
            for catalog_id, external in self.catalog.items()
            if wanted is None or external == wanted.group(1)
        ]
        return JSONResponse({"@odata.context": "$metadata#appCatalogs/teamsApps", "value": apps})


def _roles(request: Request) -> list[str] | None:
    header = request.headers.get("authorization", "")
    if not header.startswith("Bearer "):
        return None
    try:
        claims = jwt.decode(header.removeprefix("Bearer "), options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    if claims.get("aud") != f"https://{request.url.hostname}":
        return None
    return [str(role) for role in claims.get("roles", [])]


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "innerError": {"request-id": "standin"}}},
        status_code=status,
    )
