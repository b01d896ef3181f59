"""HANDOFF_CONSENT=ask: the bot asks with an Adaptive Card first; Yes hands off, No stays, remembered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.harness import alice_and_bob, message_activity, notice_settled, user_says
from tests.standins.connector import StandInConnector
from tests.standins.openai_server import StandInOpenAI, last_message, say, tool_then_say

ADAPTIVE = "application/vnd.microsoft.card.adaptive"


def card_of(call: Any) -> dict[str, Any]:
    [attachment] = call.body["attachments"]
    assert attachment["contentType"] == ADAPTIVE
    return dict(attachment["content"])


async def submit(
    http: httpx.AsyncClient, connector: StandInConnector, url: str, choice: str, service_url: str
) -> list[Any]:
    """What Teams posts when the user presses a card button: a message with `value` and no text."""
    before = len(connector.sent("a:dana"))
    activity = message_activity("", conversation_id="a:dana", service_url=service_url)
    activity["value"] = {"handoffConsent": choice}
    response = await http.post(f"{url}/api/messages", json=activity)
    assert response.status_code == 200
    await connector.wait_for(lambda c: len(c.sent("a:dana")) > before)
    await notice_settled(connector, "a:dana")
    return connector.sent("a:dana")[before:]


async def test_yes_on_the_card_hands_off_and_is_remembered(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_settings: dict,
    service_url: str,
    state_dir: Path,
) -> None:
    llm.script("alice-model", tool_then_say("handoff_to_peer", "x", peer="Bob", summary="Dana's VPN drops."))
    llm.script("bob-model", lambda request: say("Hi Dana, Bob here."))
    async with alice_and_bob(state_dir, llm_settings, handoff_consent="ask") as (alice, bob):
        [question] = await user_says(
            http, connector, alice.url, "My VPN drops", conversation_id="a:dana", service_url=service_url
        )
        card = card_of(question)
        assert card["body"][0]["text"] == "**Alice:** Bob knows IT and devices. Shall I connect you?"
        assert [a["title"] for a in card["actions"]] == ["Yes", "No"]
        assert bob.a2a_calls == 0, "nothing is sent before the user agrees"

        [notice] = await submit(http, connector, alice.url, "yes", service_url)
        assert "Bob will message you directly" in notice.text
        assert bob.a2a_calls == 1
        greetings = [c for c in connector.sent() if c.conversation_id != "a:dana"]
        assert [g.text for g in greetings] == ["**Bob:** Hi Dana, Bob here."]
        greeting_request = llm.requests_for("bob-model")[0]
        assert "Dana's VPN drops." in last_message(greeting_request)["content"]

        [direct] = await user_says(
            http,
            connector,
            alice.url,
            "And my monitor flickers",
            conversation_id="a:dana",
            service_url=service_url,
        )
        assert "Bob will message you directly" in direct.text, "Yes is remembered: no second card"
        assert bob.a2a_calls == 2


async def test_no_on_the_card_keeps_the_user_with_alice_and_is_remembered(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_settings: dict,
    service_url: str,
    state_dir: Path,
) -> None:
    def alice_model(request: dict[str, Any]) -> dict[str, Any]:
        last = last_message(request)
        if last["role"] == "tool":
            return say(f"Alright, I'll help myself. ({last['content']})")
        return tool_then_say("handoff_to_peer", "x", peer="Bob", summary="Dana's VPN drops.")(request)

    llm.script("alice-model", alice_model)
    llm.script("bob-model", lambda request: say("unused"))
    async with alice_and_bob(state_dir, llm_settings, handoff_consent="ask") as (alice, bob):
        [question] = await user_says(
            http, connector, alice.url, "My VPN drops", conversation_id="a:dana", service_url=service_url
        )
        card_of(question)
        [declined] = await submit(http, connector, alice.url, "no", service_url)
        assert declined.text.startswith("**Alice:** All right, we'll continue here.")

        [answer] = await user_says(
            http, connector, alice.url, "VPN still drops", conversation_id="a:dana", service_url=service_url
        )
        assert answer.text.startswith("**Alice:** Alright, I'll help myself.")
        assert "chose to stay with Alice" in answer.text
    assert bob.a2a_calls == 0
    assert connector.created() == []
