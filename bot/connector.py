"""The Teams SDK's API client for each Bot Connector service URL, built once and kept.

``App.api.from_service_url`` builds a new client tree on every call: nine HTTP client wrappers,
each merging settings and resetting the ``httpx`` logger's level (which clears every logger's
cache). A bot talks to a handful of service URLs (one per region its users are in), so one client
per URL serves every reply, notice, stream and greeting. The clients share the app's HTTP
connection pool and its token provider, so a kept client always sends a current token.
"""

from __future__ import annotations

from collections import OrderedDict

from microsoft_teams.api import ApiClient
from microsoft_teams.apps import App

# Far more than the regions Teams has; the bound only keeps an odd caller from growing the map.
MAX_SERVICE_URLS = 64


class ConnectorClients:
    def __init__(self, app: App, *, limit: int = MAX_SERVICE_URLS) -> None:
        self._app = app
        self._limit = limit
        self._clients: OrderedDict[str, ApiClient] = OrderedDict()

    def at(self, service_url: str) -> ApiClient:
        key = service_url.rstrip("/")
        client = self._clients.get(key)
        if client is None:
            client = self._app.api.from_service_url(key)
            self._clients[key] = client
            if len(self._clients) > self._limit:
                self._clients.popitem(last=False)
        else:
            self._clients.move_to_end(key)
        return client
