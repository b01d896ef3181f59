"""Peers' cards are cached, re-read when old or after a failed call, and a failing peer trips its breaker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from a2a.server.request_handlers.response_helpers import agent_card_to_dict
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from a2a_bridge.agent_card import build_agent_card
from a2a_bridge.handoff import HandoffMessage
from a2a_bridge.peer_client import PeerDirectory
from tests.harness import LoopbackServer, RequestRecorder, reserve_socket

CARD_PATH = "/.well-known/agent-card.json"


class FlakyPeer:
    """A peer whose card is fine but whose /a2a answers 503 (a stand-in for a sick peer)."""

    def __init__(self) -> None:
        self.app = FastAPI()
        self.description = "IT and devices"
        self.url = ""
        self.app.add_api_route(CARD_PATH, self.card, methods=["GET"])
        self.app.add_api_route("/a2a", self.a2a, methods=["POST"])

    async def card(self) -> JSONResponse:
        card = build_agent_card(
            name="Bob", description=self.description, a2a_url=f"{self.url}/a2a", requires_bearer_token=False
        )
        return JSONResponse(agent_card_to_dict(card))

    async def a2a(self, request: Request) -> JSONResponse:
        return JSONResponse({"error": "sick"}, status_code=503)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def peer() -> AsyncIterator[tuple[FlakyPeer, RequestRecorder]]:
    flaky = FlakyPeer()
    recorder = RequestRecorder(flaky.app)
    server = LoopbackServer(recorder).start()
    flaky.url = server.url
    yield flaky, recorder
    await server.stop()


def handoff() -> HandoffMessage:
    return HandoffMessage(
        handoff_id="h",
        from_="Alice",
        user_name="Dana",
        aad_object_id="a",
        tenant_id="t",
        service_url="https://smba.trafficmanager.net/teams",
        summary="VPN",
        hops=1,
    )


def directory(http: httpx.AsyncClient, url: str, clock: Clock, **options: Any) -> PeerDirectory:
    return PeerDirectory(
        [url],
        http,
        self_name="Alice",
        signer=None,
        card_max_age=300,
        retry_after=5,
        call_timeout=10,
        clock=clock,
        **options,
    )


async def test_card_is_cached_and_read_again_once_older_than_the_max_age(
    http: httpx.AsyncClient, peer: tuple[FlakyPeer, RequestRecorder]
) -> None:
    flaky, recorder = peer
    clock = Clock()
    peers = directory(http, flaky.url, clock)
    await peers.refresh()
    await peers.refresh()
    assert recorder.count("GET", CARD_PATH) == 1
    assert peers.available()[0].description == "IT and devices"

    flaky.description = "IT, devices and printers"
    clock.now += 301
    await peers.refresh()
    assert recorder.count("GET", CARD_PATH) == 2
    assert peers.available()[0].description == "IT, devices and printers"


async def test_failing_peer_is_retried_then_its_breaker_opens_and_probes_after_the_cooldown(
    http: httpx.AsyncClient, peer: tuple[FlakyPeer, RequestRecorder]
) -> None:
    flaky, recorder = peer
    clock = Clock()
    peers = directory(http, flaky.url, clock, attempts=2, breaker_threshold=2, breaker_cooldown=30)
    await peers.refresh()

    first = await peers.send_handoff("Bob", handoff())
    assert first.status.value == "failed" and first.reason == "Bob is not reachable right now."
    assert recorder.count("POST", "/a2a") == 2, "503 is transient: retried once"

    await peers.refresh()  # the failed call marked the card stale: it is read again
    assert recorder.count("GET", CARD_PATH) == 2
    await peers.send_handoff("Bob", handoff())
    assert recorder.count("POST", "/a2a") == 4

    blocked = await peers.send_handoff("Bob", handoff())
    assert recorder.count("POST", "/a2a") == 4, "the breaker is open: no call at all"
    assert "several recent attempts failed" in (blocked.reason or "")

    clock.now += 31
    await peers.refresh()
    await peers.send_handoff("Bob", handoff())
    assert recorder.count("POST", "/a2a") == 5, "after the cool-down one probe goes through (not retried)"
    await peers.send_handoff("Bob", handoff())
    assert recorder.count("POST", "/a2a") == 5, "the failed probe opened the breaker again"


async def test_a_peer_whose_card_cannot_be_fetched_is_left_out(
    http: httpx.AsyncClient, peer: tuple[FlakyPeer, RequestRecorder]
) -> None:
    flaky, _ = peer
    sock = reserve_socket()
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there yet
    clock = Clock()
    peers = PeerDirectory(
        [f"http://127.0.0.1:{port}", flaky.url],
        http,
        self_name="Alice",
        signer=None,
        card_max_age=300,
        retry_after=5,
        call_timeout=10,
        clock=clock,
    )
    await peers.refresh()
    assert [p.name for p in peers.available()] == ["Bob"]
