"""Handoffs that cannot be completed: the user hears the truth, and every bot keeps serving."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import ALICE_DESCRIPTION, BOB_DESCRIPTION
from tests.harness import alice_and_bob, recorded_handoff_outcomes, start_bot, started_bot, user_says
from tests.standins.connector import StandInConnector
from tests.standins.openai_server import StandInOpenAI, say, tool_then_say

SUMMARY = "Dana's laptop screen flickers."


async def test_create_conversation_403_tells_user_bob_could_not_reach_them(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_settings: dict,
    service_url: str,
    state_dir: Path,
) -> None:
    llm.script(
        "alice-model",
        tool_then_say("handoff_to_peer", "Bob will message you shortly!", peer="Bob", summary=SUMMARY),
    )
    llm.script("bob-model", lambda request: say("Hi Dana"))
    connector.fail("create_conversation", 403)
    async with alice_and_bob(state_dir, llm_settings) as (alice, bob):
        await user_says(
            http,
            connector,
            alice.url,
            "My laptop screen flickers",
            conversation_id="a:dana-alice",
            service_url=service_url,
        )

        assert len(connector.created()) == 1
        assert {call.conversation_id for call in connector.sent()} == {"a:dana-alice"}
        [notice] = connector.sent("a:dana-alice")
        assert "did not work" in notice.text
        assert "not installed for you" in notice.text
        assert "will message you" not in notice.text
        assert llm.requests_for("bob-model") == []
        [outcome] = await recorded_handoff_outcomes(bob.service.store)
        assert outcome.status.value == "failed"


async def test_bob_down_alice_says_so_and_her_next_turn_works(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_settings: dict,
    service_url: str,
    state_dir: Path,
) -> None:
    def alice(request: dict) -> dict:
        if "flicker" in (request["messages"][-1].get("content") or ""):
            return tool_then_say("handoff_to_peer", "x", peer="Bob", summary=SUMMARY)(request)
        if request["messages"][-1]["role"] == "tool":
            return say("relayed")
        return say("Your hotel in Oslo is booked.")

    llm.script("alice-model", alice)
    llm.script("bob-model", lambda request: say("unused"))
    bob = await start_bot(
        "Bob", BOB_DESCRIPTION, state_dir=state_dir, openai_model="bob-model", **llm_settings
    )
    async with started_bot(
        "Alice",
        ALICE_DESCRIPTION,
        state_dir=state_dir,
        openai_model="alice-model",
        peer_urls=[bob.url],
        **llm_settings,
    ) as alice_bot:
        await alice_bot.service.peers.refresh()
        assert [peer.name for peer in alice_bot.service.peers.available()] == ["Bob"]
        await bob.stop()

        await user_says(
            http,
            connector,
            alice_bot.url,
            "My laptop screen flickers",
            conversation_id="a:dana-alice",
            service_url=service_url,
        )
        [notice] = connector.sent("a:dana-alice")
        assert notice.text.startswith("**Alice:** I tried to hand you over to Bob, but it did not work")
        assert "not reachable right now" in notice.text
        assert connector.created() == []

        await user_says(
            http,
            connector,
            alice_bot.url,
            "Is my hotel booked?",
            conversation_id="a:dana-alice",
            service_url=service_url,
        )
        assert connector.sent("a:dana-alice")[-1].text == "**Alice:** Your hotel in Oslo is booked."
        last_request = llm.requests_for("alice-model")[-1]
        assert "tools" not in last_request or not last_request["tools"], "a peer that is down is not offered"
