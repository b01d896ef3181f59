"""Consulting a peer without moving the user: a plain-text A2A question, and the ask_peer tool."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from a2a_bridge.auth import SharedSecretSigner
from tests.conftest import BOB_DESCRIPTION
from tests.harness import alice_and_bob, started_bot, user_says
from tests.standins.connector import StandInConnector
from tests.standins.openai_server import StandInOpenAI, call_tool, last_message, say

SECRET = "consult-shared-secret-0123456789-abcdefgh"


def question(text: str) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "SendMessage",
        "params": {"message": {"role": "ROLE_USER", "messageId": "q-1", "parts": [{"text": text}]}},
    }


async def test_a_plain_text_question_is_answered_by_bobs_agent_under_the_same_authentication(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_settings: dict,
    state_dir: Path,
) -> None:
    llm.script("bob-model", lambda request: say("Use the VPN client's 'reset' button."))
    async with started_bot(
        "Bob",
        BOB_DESCRIPTION,
        state_dir=state_dir,
        openai_model="bob-model",
        a2a_auth_secret=SECRET,
        **llm_settings,
    ) as bob:
        anonymous = await http.post(
            f"{bob.url}/a2a", headers={"A2A-Version": "1.0"}, json=question("How do I reset the VPN?")
        )
        token = SharedSecretSigner(SECRET, "Alice").token_for("Bob")
        answered = await http.post(
            f"{bob.url}/a2a",
            json=question("How do I reset the VPN?"),
            headers={"A2A-Version": "1.0", "Authorization": f"Bearer {token}"},
        )
    assert anonymous.status_code == 401
    parts = answered.json()["result"]["message"]["parts"]
    assert parts == [{"text": "Use the VPN client's 'reset' button."}]
    prompt = last_message(llm.requests_for("bob-model")[0])["content"]
    assert "Alice, a colleague assistant, asks you" in prompt and "How do I reset the VPN?" in prompt
    assert connector.calls == [], "a question involves no Teams conversation"


async def test_ask_peer_and_handoff_in_one_conversation(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_settings: dict,
    service_url: str,
    state_dir: Path,
) -> None:
    def alice(request: dict[str, Any]) -> dict[str, Any]:
        last = last_message(request)
        if last["role"] == "tool":
            return say(f"According to Bob: {last['content'].split('answered: ', 1)[-1]}")
        if "company laptop" in last["content"]:
            return call_tool("ask_peer", peer="Bob", question="Can travellers take a company laptop abroad?")
        return call_tool("handoff_to_peer", peer="Bob", summary="Dana's laptop will not boot.")

    def bob(request: dict[str, Any]) -> dict[str, Any]:
        if "asks you on behalf of a user" in last_message(request)["content"]:
            return say("Yes, with the encrypted disk enabled.")
        return say("Hi Dana, Bob here about your laptop.")

    llm.script("alice-model", alice)
    llm.script("bob-model", bob)
    async with alice_and_bob(state_dir, llm_settings) as (a, b):
        [answer] = await user_says(
            http,
            connector,
            a.url,
            "Can I take my company laptop to Japan?",
            conversation_id="a:dana",
            service_url=service_url,
        )
        assert answer.text == "**Alice:** According to Bob: Yes, with the encrypted disk enabled."
        assert connector.created() == [], "asking Bob does not move the user"

        [notice] = await user_says(
            http,
            connector,
            a.url,
            "Also, my laptop will not boot at all.",
            conversation_id="a:dana",
            service_url=service_url,
        )
        assert "Bob will message you directly" in notice.text
        assert len(connector.created()) == 1
    first = llm.requests_for("alice-model")[0]
    offered = {tool["function"]["name"]: tool["function"]["parameters"] for tool in first["tools"]}
    assert set(offered) == {"ask_peer", "handoff_to_peer"}
    assert offered["ask_peer"]["properties"]["peer"]["enum"] == ["Bob"]
    assert b.a2a_calls == 2


async def test_offline_alice_asks_bob_when_told_to(
    http: httpx.AsyncClient, connector: StandInConnector, service_url: str, state_dir: Path
) -> None:
    async with alice_and_bob(state_dir) as (alice, _bob):
        [reply] = await user_says(
            http,
            connector,
            alice.url,
            "Please ask Bob which VPN client we use",
            conversation_id="a:dana",
            service_url=service_url,
        )
    assert reply.text.startswith("**Alice:** [offline model] Bob answered: [offline model] Bob here")
    assert connector.created() == []
