"""Two replicas of Alice and two of Bob, each pair on one PostgreSQL database behind a round-robin
load balancer: whichever replica a request lands on, the user gets one answer and one greeting, a
peer token works once, and a replica killed mid-turn has its turn finished by the other."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from a2a_bridge.auth import SharedSecretSigner
from tests.conftest import ALICE_DESCRIPTION, BOB_DESCRIPTION
from tests.harness import LoopbackServer, message_activity, notice_settled
from tests.processes import BotProcess
from tests.proxy import RoundRobinProxy
from tests.standins.connector import StandInConnector
from tests.standins.openai_server import StandInOpenAI, held_until, say, tool_then_say
from tests.test_a2a_endpoint import A2A_HEADERS, handoff, send_message
from tests.test_resilience import VPN, echo, greetings_in
from tests.test_store import postgres_database

SECRET = "replicas-share-this-secret-0123456789"


@dataclass
class Fleet:
    alice: list[BotProcess]
    bob: list[BotProcess]
    alice_proxy: RoundRobinProxy
    bob_proxy: RoundRobinProxy
    alice_url: str
    bob_url: str


@contextlib.asynccontextmanager
async def two_of_each(tmp_path: Path, llm_server: Any) -> AsyncIterator[Fleet]:
    async with postgres_database() as alice_db, postgres_database() as bob_db:
        alice = [BotProcess("Alice", {}, tmp_path) for _ in range(2)]
        bob = [BotProcess("Bob", {}, tmp_path) for _ in range(2)]
        alice_proxy, bob_proxy = (
            RoundRobinProxy([p.url for p in alice]),
            RoundRobinProxy([p.url for p in bob]),
        )
        servers = [LoopbackServer(alice_proxy).start(), LoopbackServer(bob_proxy).start()]
        alice_url, bob_url = servers[0].url, servers[1].url
        common = {
            "OPENAI_BASE_URL": f"{llm_server[1].url}/v1",
            "OPENAI_API_KEY": "sk-test",
            "A2A_AUTH_SECRET": SECRET,
            "TURN_LEASE_SECONDS": "1",
            "HANDOFF_LEASE_SECONDS": "2",
            "HANDOFF_POLL_SECONDS": "0.3",
        }
        for replicas, description, model, database, own, peer in (
            (alice, ALICE_DESCRIPTION, "alice-model", alice_db, alice_url, bob_url),
            (bob, BOB_DESCRIPTION, "bob-model", bob_db, bob_url, alice_url),
        ):
            for replica in replicas:
                replica.settings = {
                    **common,
                    "BOT_DESCRIPTION": description,
                    "OPENAI_MODEL": model,
                    "STATE_URL": database,
                    "BOT_SELF_URL": own,
                    "PEER_URLS": peer,
                }
        try:
            # Started together: schema set-up on the empty databases is done once, under a lock.
            await asyncio.gather(*(replica.start() for replica in [*alice, *bob]))
            yield Fleet(alice, bob, alice_proxy, bob_proxy, alice_url, bob_url)
        finally:
            for replica in [*alice, *bob]:
                if replica.process is not None and replica.process.returncode is None:
                    await replica.stop()
            for server in servers:
                await server.stop()
            await alice_proxy.aclose()
            await bob_proxy.aclose()


async def test_duplicate_deliveries_on_two_alice_replicas_give_one_notice_and_one_greeting(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_server: Any,
    service_url: str,
    tmp_path: Path,
) -> None:
    llm.script("alice-model", tool_then_say("handoff_to_peer", "x", peer="Bob", summary="VPN broken"))
    llm.script("bob-model", lambda request: say("Hi Dana, Bob here."))
    async with two_of_each(tmp_path, llm_server) as fleet:
        activity = message_activity(VPN, conversation_id="a:dana", service_url=service_url)
        # Teams retried while the first delivery was still being answered: each lands on a replica.
        responses = await asyncio.gather(
            *(http.post(f"{fleet.alice_url}/api/messages", json=activity) for _ in range(4))
        )
        assert [r.status_code for r in responses] == [200] * 4
        assert set(fleet.alice_proxy.routed) == {p.url for p in fleet.alice}
        text = await notice_settled(connector, "a:dana")
        assert "Bob will message you directly" in text
        assert len(connector.sent("a:dana")) == 1, "one notice, edited in place"
        assert greetings_in(connector, "a:dana") == ["**Bob:** Hi Dana, Bob here."]
        assert len(connector.created()) == 1
        assert len(llm.requests_for("alice-model")) == 1, "one turn ran, in one replica"


async def test_a_peer_token_used_at_one_bob_replica_is_refused_at_the_other(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_server: Any,
    service_url: str,
    tmp_path: Path,
) -> None:
    llm.script("bob-model", lambda request: say("Hi Dana, Bob here."))
    async with two_of_each(tmp_path, llm_server) as fleet:
        stolen = SharedSecretSigner(SECRET, "Alice").token_for("Bob")
        headers = {**A2A_HEADERS, "Authorization": f"Bearer {stolen}"}
        one, other = fleet.bob  # straight to each replica: the replay lands on the other one
        first = await http.post(
            f"{one.url}/a2a", headers=headers, json=send_message({"data": handoff(service_url)})
        )
        assert first.status_code == 200
        replayed = await http.post(
            f"{other.url}/a2a", headers=headers, json=send_message({"data": handoff(service_url)})
        )
        assert replayed.status_code == 401
        assert "token replayed" in replayed.json()["error"]["message"]
        await connector.wait_for(lambda c: len(greetings_in(c, "a:dana")) == 1)
        assert len(connector.created()) == 1, "only the first handoff was carried out"


async def test_an_alice_replica_killed_mid_turn_has_the_turn_finished_by_the_other_once(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_server: Any,
    service_url: str,
    tmp_path: Path,
) -> None:
    gate = asyncio.Event()
    llm.script("alice-model", held_until(gate, echo))
    async with two_of_each(tmp_path, llm_server) as fleet:
        activity = message_activity(
            "Book me a train to Lyon", conversation_id="a:dana", service_url=service_url
        )
        assert (await http.post(f"{fleet.alice_url}/api/messages", json=activity)).status_code == 200
        # The replica that took the message (not merely the last request: Bob's replicas fetch
        # Alice's card through the same proxy, at moments of their own).
        [took] = [url for url, path in fleet.alice_proxy.paths if path == "/api/messages"]
        [owner] = [p for p in fleet.alice if p.url == took]
        [survivor] = [p for p in fleet.alice if p is not owner]
        await llm.wait_for_requests("alice-model", 1)
        await owner.kill()
        gate.set()
        # No redelivery: the survivor finds the turn when the dead replica's lease runs out.
        await connector.wait_for(lambda c: len(c.sent("a:dana")) == 1, within=30)
        assert connector.sent("a:dana")[0].text == "**Alice:** echo: Book me a train to Lyon"
        await survivor.wait_for_event("turn_taken_over")
        # Marker: a chat's turns run in order, so a second answer would have come before this one.
        marker = message_activity("marker", conversation_id="a:dana", service_url=service_url)
        assert (await http.post(f"{survivor.url}/api/messages", json=marker)).status_code == 200
        await connector.wait_for(lambda c: len(c.sent("a:dana")) == 2)
        assert [call.text for call in connector.sent("a:dana")] == [
            "**Alice:** echo: Book me a train to Lyon",
            "**Alice:** echo: marker",
        ]
