"""A fleet that mixes our bots with bots built on Microsoft's sample (../shared/sample-wire.md), both
ways, through our real bots and a stand-in that does what the sample does on the wire."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ALICE_DESCRIPTION, BOB_DESCRIPTION
from tests.harness import (
    LoopbackServer,
    TeamsUser,
    alice_and_bob,
    answer_parts,
    logged,
    message_activity,
    started_bot,
    user_says,
)
from tests.standins.connector import StandInConnector
from tests.standins.openai_server import StandInOpenAI, tool_then_say
from tests.standins.sample_peer import CONFIRMED_TEXT, SampleBot

VPN_QUESTION = "My VPN keeps disconnecting on my laptop since this morning."
VPN_SUMMARY = "Dana's VPN on her laptop keeps disconnecting since this morning."
SECRET = "mixed-fleet-shared-secret-0123456789"


@contextlib.asynccontextmanager
async def running_sample(bot: SampleBot) -> AsyncIterator[SampleBot]:
    server = LoopbackServer(bot.app())
    bot.self_url = server.url
    server.start()
    try:
        yield bot
    finally:
        await server.stop()


def metric(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return float(found.value)
    return 0.0


# The sample's Alice hands a user to our Bob ------------------------------------------------------


async def test_sample_alice_hands_a_user_to_our_bob_who_greets_them_at_their_service_url(
    http: httpx.AsyncClient, connector: StandInConnector, service_url: str, state_dir: Path
) -> None:
    user = TeamsUser()
    async with (
        started_bot("Bob", BOB_DESCRIPTION, state_dir=state_dir) as bob,
        running_sample(SampleBot("Alice", ALICE_DESCRIPTION, service_url, peer_url=bob.url)) as alice,
    ):
        turn = await http.post(
            f"{alice.self_url}/api/messages",
            json=message_activity(
                VPN_QUESTION, conversation_id="a:dana-sample-alice", service_url=service_url, user=user
            ),
        )
        assert turn.status_code == 200

        [create] = connector.created()
        assert create.body["members"][0]["id"] == user.aad_object_id
        [greeting] = connector.sent(create.returned_id)
        assert greeting.text.startswith("**Bob:**") and VPN_QUESTION in greeting.text
        [notice] = connector.sent("a:dana-sample-alice")
        assert notice.text == CONFIRMED_TEXT, "what the sample says, now true: Bob greeted the user"

        [answer] = alice.answers_from_peer
        parts = answer_parts(answer.json())
        [outcome] = [part["data"] for part in parts if part["kind"] == "data"]
        assert outcome["kind"] == "handoffOutcome" and outcome["status"] == "delivered"
        [text] = [part["text"] for part in parts if part["kind"] == "text"]
        assert "Bob" in text, "a text-only peer has something to show"


async def test_the_samples_turns_fail_while_it_cannot_fetch_its_peers_card(
    http: httpx.AsyncClient, service_url: str
) -> None:
    """The stand-in is faithful to the sample here too: without the peer's card, every turn is a 500."""
    async with running_sample(SampleBot("Alice", ALICE_DESCRIPTION, service_url)) as alice:
        alice.peer_url = alice.self_url + "/nobody"
        turn = await http.post(
            f"{alice.self_url}/api/messages",
            json=message_activity("hello", conversation_id="a:x", service_url=service_url),
        )
    assert turn.status_code == 500


# Our Alice hands a user to the sample's Bob ------------------------------------------------------


@pytest.mark.parametrize("form", ["base", "a2a", "card"])
async def test_our_alice_hands_a_user_to_the_samples_bob_and_says_it_is_unconfirmed(
    form: str,
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_settings: dict[str, Any],
    service_url: str,
    state_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    llm.script("alice-model", tool_then_say("handoff_to_peer", "unused", peer="Bob", summary=VPN_SUMMARY))
    async with running_sample(SampleBot("Bob", BOB_DESCRIPTION, service_url)) as bob:
        peer_url = {
            "base": bob.self_url,
            "a2a": f"{bob.self_url}/a2a",
            "card": f"{bob.self_url}/a2a/.well-known/agent-card.json",
        }[form]
        async with started_bot(
            "Alice",
            ALICE_DESCRIPTION,
            state_dir=state_dir,
            peer_urls=[peer_url],
            openai_model="alice-model",
            **llm_settings,
        ) as alice:
            await user_says(
                http,
                connector,
                alice.url,
                VPN_QUESTION,
                conversation_id="a:dana-alice",
                service_url=service_url,
            )
            metrics = (await http.get(f"{alice.url}/metrics")).text

        [request] = llm.requests_for("alice-model")
        handoff_tool = next(t for t in request["tools"] if t["function"]["name"] == "handoff_to_peer")
        assert handoff_tool["function"]["parameters"]["properties"]["peer"]["enum"] == ["Bob"]

        [call] = bob.received
        assert call.path == "/a2a/", "the 307 from /a2a was followed, as a POST"
        assert call.body["method"] == "message/send", "0.3 names to a 0.3 peer"
        assert call.headers["a2a-version"] == "0.3"
        [part] = call.body["params"]["message"]["parts"]
        assert part["kind"] == "data" and part["data"]["kind"] == "handoff"
        assert part["data"]["summary"] == VPN_SUMMARY

        [create] = connector.created()
        [greeting] = connector.sent(create.returned_id)
        assert VPN_SUMMARY in greeting.text

        [notice] = connector.sent("a:dana-alice")
        assert notice.text.startswith("**Alice:**")
        assert "did not confirm" in notice.text and "ask me again" in notice.text
        assert "will message you directly" not in notice.text and "did not work" not in notice.text
        assert metric(metrics, "handoffs_sent_total", peer="Bob", outcome="unconfirmed") == 1
        assert metric(metrics, "handoffs_sent_total", peer="Bob", outcome="failed") == 0
        [event] = logged(caplog.records, "handoff_unconfirmed")
        assert event["peer"] == "Bob" and event["answer"] == "task completed"


async def test_in_production_our_token_goes_to_the_sample_which_takes_the_handoff_anyway(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_settings: dict[str, Any],
    service_url: str,
    state_dir: Path,
) -> None:
    """A handoff to a sample-built bot works with A2A auth on: the sample ignores the token. The
    redirect stays on the sample's origin, so the token follows it, and goes nowhere else."""
    llm.script("alice-model", tool_then_say("handoff_to_peer", "unused", peer="Bob", summary=VPN_SUMMARY))
    async with running_sample(SampleBot("Bob", BOB_DESCRIPTION, service_url)) as bob:
        async with started_bot(
            "Alice",
            ALICE_DESCRIPTION,
            state_dir=state_dir,
            peer_urls=[bob.self_url],
            openai_model="alice-model",
            a2a_auth_secret=SECRET,
            **llm_settings,
        ) as alice:
            await user_says(
                http,
                connector,
                alice.url,
                VPN_QUESTION,
                conversation_id="a:dana-alice",
                service_url=service_url,
            )
        [call] = bob.received
        assert call.headers["authorization"].startswith("Bearer ")
        assert len(connector.created()) == 1
        assert "did not confirm" in connector.sent("a:dana-alice")[0].text


async def test_our_bots_speak_1_0_to_each_other(
    http: httpx.AsyncClient, connector: StandInConnector, service_url: str, state_dir: Path
) -> None:
    """Our card lists a 1.0 and a 0.3 interface; a 1.0 client picks 1.0."""
    async with alice_and_bob(state_dir) as (alice, bob):
        await user_says(
            http, connector, alice.url, VPN_QUESTION, conversation_id="a:dana-alice", service_url=service_url
        )
        assert bob.recorder.a2a_versions == ["1.0"]
