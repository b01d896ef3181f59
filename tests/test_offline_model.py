"""The built-in offline model drives the real tool loop: it routes, and it says it is offline."""

from __future__ import annotations

from pathlib import Path

import httpx

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
        assert "OPENAI_API_KEY" in reply.text and "AZURE_OPENAI_ENDPOINT" in reply.text
