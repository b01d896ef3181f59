"""The whole loop over loopback HTTP: Teams activity -> Alice's model -> A2A -> Bob -> connector."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import ALICE_DESCRIPTION, BOB_DESCRIPTION, CAROL_DESCRIPTION
from tests.harness import TeamsUser, alice_and_bob, started_bot, user_says
from tests.standins.connector import StandInConnector
from tests.standins.openai_server import StandInOpenAI, call_tool, last_message, say, tool_then_say

VPN_QUESTION = "My VPN keeps disconnecting on my laptop since this morning."
VPN_SUMMARY = "Dana's VPN on her laptop keeps disconnecting since this morning."


def tool_schema(request: dict, name: str) -> dict:
    for tool in request.get("tools", []):
        if tool["function"]["name"] == name:
            return dict(tool["function"]["parameters"])
    raise AssertionError(f"tool {name} not offered; tools: {request.get('tools')}")


async def test_alice_answers_in_specialty_question_herself(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_settings: dict,
    service_url: str,
    state_dir: Path,
) -> None:
    llm.script("bob-model", lambda request: say("unused"))
    llm.script("alice-model", lambda request: say("Per diem for Berlin is 42 EUR a day."))
    async with alice_and_bob(state_dir, llm_settings) as (alice, bob):
        await user_says(
            http,
            connector,
            alice.url,
            "What is the per diem for Berlin?",
            conversation_id="a:dana-alice",
            service_url=service_url,
        )
        assert bob.a2a_calls == 0
        assert connector.created() == []
        [reply] = connector.sent("a:dana-alice")
        assert reply.text == "**Alice:** Per diem for Berlin is 42 EUR a day."
        assert reply.prefix == "emea"
        in_chat = [call.body["type"] for call in connector.calls if call.conversation_id == "a:dana-alice"]
        assert in_chat[0] == "typing" and in_chat[-1] == "message", "typing, the streamed answer, its end"
        [request] = llm.requests_for("alice-model")
        assert tool_schema(request, "handoff_to_peer")["properties"]["peer"]["enum"] == ["Bob"]
        assert "Bob: " + BOB_DESCRIPTION in request["messages"][0]["content"]


async def test_handoff_to_bob_greets_user_in_new_chat(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_settings: dict,
    service_url: str,
    state_dir: Path,
) -> None:
    llm.script(
        "alice-model",
        tool_then_say("handoff_to_peer", "Bob will take it from here.", peer="Bob", summary=VPN_SUMMARY),
    )
    llm.script(
        "bob-model",
        lambda request: say(
            "Hi Dana, I'm Bob from IT. I understand your VPN keeps dropping on your laptop. Which VPN client?"
        ),
    )
    user = TeamsUser()
    async with alice_and_bob(state_dir, llm_settings) as (alice, bob):
        await user_says(
            http,
            connector,
            alice.url,
            VPN_QUESTION,
            conversation_id="a:dana-alice",
            # Teams writes one endpoint several ways: it is called (and handed on) in one spelling.
            service_url=service_url.replace("http://", "HTTP://") + "/",
            user=user,
        )

        [create] = connector.created()
        assert create.prefix == "emea"
        assert create.body["members"][0]["id"] == user.aad_object_id
        assert create.body["tenantId"] == user.tenant_id
        new_conversation = connector.created()[0].returned_id
        assert new_conversation is not None
        [greeting] = connector.sent(new_conversation)
        assert greeting.prefix == "emea"
        assert greeting.text.startswith("**Bob:** Hi Dana, I'm Bob")
        greeting_request = llm.requests_for("bob-model")[0]
        assert VPN_SUMMARY in last_message(greeting_request)["content"]
        assert "tools" not in greeting_request or not greeting_request["tools"]

        [notice] = connector.sent("a:dana-alice")
        assert notice.text.startswith("**Alice:**")
        assert "Bob will message you directly" in notice.text
        assert bob.a2a_calls == 1
        posted = [call for call in connector.calls if call.kind != "create_conversation"]
        assert {call.prefix for call in connector.calls} == {"emea"}
        assert {call.body["conversation"].get("tenantId") for call in posted} == {user.tenant_id}, (
            "the greeting, the notice and its edit name the user's tenant"
        )


async def test_users_next_message_to_bob_has_greeting_and_summary_in_history(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_settings: dict,
    service_url: str,
    state_dir: Path,
) -> None:
    llm.script("alice-model", tool_then_say("handoff_to_peer", "done", peer="Bob", summary=VPN_SUMMARY))
    greeting_text = "Hi Dana, Bob here. Your VPN drops on your laptop; which client do you use?"
    llm.script(
        "bob-model",
        lambda request: say(
            greeting_text if len(llm.requests_for("bob-model")) == 1 else "Try reinstalling the client."
        ),
    )
    async with alice_and_bob(state_dir, llm_settings) as (alice, bob):
        await user_says(
            http, connector, alice.url, VPN_QUESTION, conversation_id="a:dana-alice", service_url=service_url
        )
        [create] = connector.created()
        new_conversation = create.returned_id
        assert new_conversation is not None

        await user_says(
            http,
            connector,
            bob.url,
            "It's GlobalProtect.",
            conversation_id=new_conversation,
            service_url=service_url,
        )

        second = llm.requests_for("bob-model")[1]
        history = [(m["role"], m.get("content") or "") for m in second["messages"]]
        assert any(role == "user" and VPN_SUMMARY in content for role, content in history)
        assert ("assistant", greeting_text) in history
        assert history[-1] == ("user", "It's GlobalProtect.")
        replies = connector.sent(new_conversation)
        assert [r.text for r in replies] == [
            f"**Bob:** {greeting_text}",
            "**Bob:** Try reinstalling the client.",
        ]


async def test_three_bots_model_picks_carol_from_exactly_two_offered_peers(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_settings: dict,
    service_url: str,
    state_dir: Path,
) -> None:
    llm.script(
        "alice-model",
        tool_then_say(
            "handoff_to_peer", "ok", peer="Carol", summary="Dana asks how many holiday days she has left."
        ),
    )
    llm.script("bob-model", lambda request: say("unused"))
    llm.script("carol-model", lambda request: say("Hi Dana, Carol from HR here about your holidays."))
    async with (
        started_bot(
            "Bob", BOB_DESCRIPTION, state_dir=state_dir, openai_model="bob-model", **llm_settings
        ) as bob,
        started_bot(
            "Carol", CAROL_DESCRIPTION, state_dir=state_dir, openai_model="carol-model", **llm_settings
        ) as carol,
        started_bot(
            "Alice",
            ALICE_DESCRIPTION,
            state_dir=state_dir,
            openai_model="alice-model",
            peer_urls=[bob.url, carol.url],
            **llm_settings,
        ) as alice,
    ):
        await user_says(
            http,
            connector,
            alice.url,
            "How many holiday days do I have left?",
            conversation_id="a:dana-alice",
            service_url=service_url,
        )

        first = llm.requests_for("alice-model")[0]
        assert sorted(tool_schema(first, "handoff_to_peer")["properties"]["peer"]["enum"]) == ["Bob", "Carol"]
        assert carol.a2a_calls == 1
        assert bob.a2a_calls == 0
        new_conversation = connector.created()[0].returned_id
        assert new_conversation is not None
        [greeting] = connector.sent(new_conversation)
        assert greeting.text.startswith("**Carol:** Hi Dana, Carol from HR")
        [notice] = connector.sent("a:dana-alice")
        assert "Carol will message you directly" in notice.text


async def test_model_naming_an_unknown_peer_makes_no_a2a_call(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_settings: dict,
    service_url: str,
    state_dir: Path,
) -> None:
    def alice(request: dict) -> dict:
        if last_message(request)["role"] == "tool":
            return say("I could not find that colleague, but I can help with travel.")
        return call_tool("handoff_to_peer", peer="Mallory", summary="anything")

    llm.script("alice-model", alice)
    llm.script("bob-model", lambda request: say("unused"))
    async with alice_and_bob(state_dir, llm_settings) as (alice_bot, bob):
        await user_says(
            http,
            connector,
            alice_bot.url,
            "Pass me to Mallory",
            conversation_id="a:dana-alice",
            service_url=service_url,
        )
        assert bob.a2a_calls == 0
        assert connector.created() == []
        [reply] = connector.sent("a:dana-alice")
        assert "could not find that colleague" in reply.text
        assert "will message you directly" not in reply.text
