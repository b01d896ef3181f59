"""The built-in offline model drives the real tool loop: it routes, and it says it is offline."""

from __future__ import annotations

from pathlib import Path

import httpx

from a2a_bridge.handoff import MAX_SUMMARY_CHARS, shorten
from tests.harness import alice_and_bob, user_says
from tests.standins.connector import StandInConnector


async def test_offline_alice_hands_an_it_question_to_bob(
    http: httpx.AsyncClient, connector: StandInConnector, service_url: str, state_dir: Path
) -> None:
    async with alice_and_bob(state_dir) as (alice, bob):
        await user_says(
            http,
            connector,
            alice.url,
            "My laptop can't connect to the VPN",
            conversation_id="a:dana-alice",
            service_url=service_url,
        )

        assert bob.a2a_calls == 1
        new_conversation = connector.created()[0].returned_id
        assert new_conversation is not None
        [greeting] = connector.sent(new_conversation)
        assert greeting.text.startswith(
            "**Bob:** [offline model] Hi Dana Smith, I'm Bob, taking over from Alice."
        )
        assert "My laptop can't connect to the VPN" in greeting.text
        [notice] = connector.sent("a:dana-alice")
        assert "Bob will message you directly" in notice.text

        await user_says(
            http,
            connector,
            bob.url,
            "Is there anything I should try?",
            conversation_id=new_conversation,
            service_url=service_url,
        )
        follow_up = connector.sent(new_conversation)[-1].text
        assert "[offline model]" in follow_up
        assert "From Alice's handoff I know what you need" in follow_up
        assert "My laptop can't connect to the VPN" in follow_up
        assert "You wrote: \u201cIs there anything I should try?\u201d" in follow_up, (
            "Bob reads the new message"
        )


async def test_offline_alice_answers_a_travel_question_with_the_offline_notice(
    http: httpx.AsyncClient, connector: StandInConnector, service_url: str, state_dir: Path
) -> None:
    async with alice_and_bob(state_dir) as (alice, bob):
        await user_says(
            http,
            connector,
            alice.url,
            "How do I submit my hotel receipts for reimbursement?",
            conversation_id="a:dana-alice",
            service_url=service_url,
        )

        assert bob.a2a_calls == 0
        assert connector.created() == []
        [reply] = connector.sent("a:dana-alice")
        assert reply.text.startswith("**Alice:** [offline model]")
        assert "You wrote: \u201cHow do I submit my hotel receipts for reimbursement?\u201d" in reply.text
        assert "With a real model configured I would answer that here" in reply.text
        assert "OPENAI_API_KEY" in reply.text and "AZURE_OPENAI_ENDPOINT" in reply.text


def test_a_long_summary_is_cut_at_a_word_with_a_marker() -> None:
    words = " ".join(f"word{n}" for n in range(2000))
    cut = shorten(words, MAX_SUMMARY_CHARS)
    assert len(cut) <= MAX_SUMMARY_CHARS and cut.endswith("\u2026")
    assert cut[:-1].split(" ")[-1] in words.split(" "), "the last word is whole"
    assert shorten("short enough", MAX_SUMMARY_CHARS) == "short enough"
