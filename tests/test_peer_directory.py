"""Peers' cards are cached, re-read when old or after a failed call, and a failing peer trips its breaker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from a2a.server.request_handlers.response_helpers import agent_card_to_dict
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from a2a_bridge.agent_card import build_agent_card
from a2a_bridge.breaker import BreakerState, CircuitBreaker
from a2a_bridge.card_cache import CardPolicy, PeerCards
from a2a_bridge.handoff import HandoffMessage, HandoffOutcome
from a2a_bridge.peer_client import CallPolicy, PeerClient
from scripts.bot_process import listening_socket
from tests.harness import LoopbackServer, RequestRecorder

CARD_PATH = "/.well-known/agent-card.json"


class FlakyPeer:
    """A peer whose card is fine but whose /a2a answers 503 (a stand-in for a sick peer), or, with
    ``refusing``, a JSON-RPC error (a peer that is up and says no)."""

    def __init__(self) -> None:
        self.app = FastAPI()
        self.description = "IT and devices"
        self.url = ""
        self.refusing = False
        self.app.add_api_route(CARD_PATH, self.card, methods=["GET"])
        self.app.add_api_route("/a2a", self.a2a, methods=["POST"])

    async def card(self) -> JSONResponse:
        card = build_agent_card(
            name="Bob", description=self.description, a2a_url=f"{self.url}/a2a", requires_bearer_token=False
        )
        return JSONResponse(agent_card_to_dict(card))

    async def a2a(self, request: Request) -> JSONResponse:
        if self.refusing:
            call = await request.json()
            error = {"code": -32602, "message": "invalid params"}
            return JSONResponse({"jsonrpc": "2.0", "id": call.get("id"), "error": error})
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


def directory(http: httpx.AsyncClient, *urls: str, clock: Clock, **call_policy: Any) -> PeerClient:
    cards = PeerCards(
        list(urls), http, self_name="Alice", policy=CardPolicy(max_age=300, retry_after=5), clock=clock
    )
    return PeerClient(cards, policy=CallPolicy(timeout=10, **call_policy), clock=clock)


async def test_card_is_cached_and_read_again_once_older_than_the_max_age(
    http: httpx.AsyncClient, peer: tuple[FlakyPeer, RequestRecorder]
) -> None:
    flaky, recorder = peer
    clock = Clock()
    peers = directory(http, flaky.url, clock=clock)
    await peers.refresh()
    await peers.refresh()
    assert recorder.count("GET", CARD_PATH) == 1
    assert peers.available()[0].description == "IT and devices"

    flaky.description = "IT, devices and printers"
    clock.now += 301
    await peers.refresh()
    assert recorder.count("GET", CARD_PATH) == 2
    assert peers.available()[0].description == "IT, devices and printers"


async def test_a_turn_uses_the_card_it_has_while_an_old_one_is_read_again_in_the_background(
    http: httpx.AsyncClient, peer: tuple[FlakyPeer, RequestRecorder]
) -> None:
    flaky, recorder = peer
    clock = Clock()
    peers = directory(http, flaky.url, clock=clock)
    await peers.refresh(wait_for_old=False)  # no card yet: this one is waited for
    assert peers.available()[0].description == "IT and devices"

    flaky.description = "IT, devices and printers"
    clock.now += 301
    await peers.refresh(wait_for_old=False)
    assert peers.available()[0].description == "IT and devices", "the turn did not wait for the card"
    await peers.refresh()  # waits for the fetch already under way instead of starting another
    assert peers.available()[0].description == "IT, devices and printers"
    assert recorder.count("GET", CARD_PATH) == 2


async def test_failing_peer_is_retried_then_its_breaker_opens_and_probes_after_the_cooldown(
    http: httpx.AsyncClient, peer: tuple[FlakyPeer, RequestRecorder]
) -> None:
    flaky, recorder = peer
    clock = Clock()
    peers = directory(http, flaky.url, clock=clock, attempts=2, breaker_threshold=2, breaker_cooldown=30)
    await peers.refresh()

    first = await peers.send_handoff("Bob", handoff())
    assert isinstance(first, HandoffOutcome)
    assert first.status.value == "failed" and first.reason == "Bob is not reachable right now."
    assert recorder.count("POST", "/a2a") == 2, "503 is transient: retried once"

    await peers.refresh()  # the failed call marked the card stale: it is read again
    assert recorder.count("GET", CARD_PATH) == 2
    await peers.send_handoff("Bob", handoff())
    assert recorder.count("POST", "/a2a") == 4

    blocked = await peers.send_handoff("Bob", handoff())
    assert recorder.count("POST", "/a2a") == 4, "the breaker is open: no call at all"
    assert isinstance(blocked, HandoffOutcome) and "several recent attempts failed" in (blocked.reason or "")

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
    sock = listening_socket()
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there yet
    clock = Clock()
    peers = directory(http, f"http://127.0.0.1:{port}", flaky.url, clock=clock)
    await peers.refresh()
    assert [p.name for p in peers.available()] == ["Bob"]


async def test_a_half_open_breaker_is_not_stuck_when_the_probe_is_refused_by_the_peer(
    http: httpx.AsyncClient, peer: tuple[FlakyPeer, RequestRecorder]
) -> None:
    """The probe through ``ask`` gets a JSON-RPC error: the peer is up, so the breaker closes and
    later calls go through (it used to keep the probe slot for ever and refuse every call)."""
    flaky, recorder = peer
    clock = Clock()
    peers = directory(http, flaky.url, clock=clock, attempts=1, breaker_threshold=1, breaker_cooldown=30)
    await peers.refresh()
    assert not (await peers.ask("Bob", "Which VPN client?")).ok
    assert peers.breaker_states() == {"Bob": "open"}

    clock.now += 31
    flaky.refusing = True
    await peers.refresh()
    probe = await peers.ask("Bob", "Which VPN client?")
    assert not probe.ok and recorder.count("POST", "/a2a") == 2
    assert peers.breaker_states() == {"Bob": "closed"}
    for _ in range(3):
        await peers.ask("Bob", "Which VPN client?")
    assert recorder.count("POST", "/a2a") == 5, "every later call reaches the peer"


def test_a_call_that_ends_in_an_error_nobody_expected_still_frees_the_probe_slot() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, cooldown=30, clock=clock)
    breaker.record_failure()
    clock.now += 31
    assert breaker.allow(), "half-open: the probe goes through"
    with contextlib.suppress(RuntimeError), breaker.guard():
        raise RuntimeError("a bug in an SDK")
    assert breaker.state is BreakerState.OPEN, "the failed probe opened the breaker again"
    clock.now += 31
    assert breaker.allow(), "and after the cool-down the next probe is let through"


async def test_a_cancelled_probe_frees_the_slot_without_counting_against_the_peer() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, cooldown=30, clock=clock)
    breaker.record_failure()
    clock.now += 31
    assert breaker.allow()
    with contextlib.suppress(asyncio.CancelledError), breaker.guard():
        raise asyncio.CancelledError
    assert breaker.state is BreakerState.HALF_OPEN, "a cancellation says nothing about the peer"
    assert breaker.allow(), "the next probe is let through at once"
