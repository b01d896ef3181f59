"""The Teams SDK's API client per service URL is built once, then kept (and the map stays bounded)."""

from __future__ import annotations

from microsoft_teams.apps import App

from bot.connector import ConnectorClients

AMER = "https://smba.trafficmanager.net/amer/"
EMEA = "https://smba.trafficmanager.net/emea/"


def test_one_client_per_service_url_shared_by_every_send() -> None:
    apis = ConnectorClients(App())
    first = apis.at(AMER)
    assert apis.at(AMER.rstrip("/")) is first
    assert first.service_url == AMER.rstrip("/")
    other = apis.at(EMEA)
    assert other is not first and other.service_url == EMEA.rstrip("/")
    # The kept clients share the app's connection pool and token provider.
    assert first.http.http is other.http.http


def test_least_recently_used_service_url_is_dropped_past_the_bound() -> None:
    apis = ConnectorClients(App(), limit=2)
    amer, emea = apis.at(AMER), apis.at(EMEA)
    assert apis.at(AMER) is amer  # used again: EMEA is now the oldest
    apis.at("https://smba.trafficmanager.net/apac/")
    assert apis.at(AMER) is amer
    assert apis.at(EMEA) is not emea
