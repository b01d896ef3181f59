"""What Teams users expect of a bot: answers that stream in personal chats (one plain message where
streaming is not allowed), group chats where the bot speaks only when @mentioned and keeps the
user's context out of the group, a notice card, each bot under its own name, and edits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from bot.config import Settings
from tests.conftest import ALICE_DESCRIPTION, BOB_DESCRIPTION
from tests.harness import TeamsUser, alice_and_bob, message_activity, started_bot, user_says
from tests.processes import BotProcess
from tests.standins.connector import ConnectorCall, StandInConnector
from tests.standins.entra import StandInEntra
from tests.standins.openai_server import StandInOpenAI, say, tool_then_say
from tests.test_resilience import echo, process_llm_env

ANSWER = "Per diem for Berlin is 42 EUR a day, and 28 EUR on the days you travel."
VPN_SUMMARY = "Dana's VPN on her laptop keeps disconnecting since this morning."
GROUP = "19:trip-planning@thread.v2"


def alice_on_the_model(state_dir: Path, llm_settings: dict[str, Any], **settings: Any) -> Any:
    """Alice in this process, answering through the stand-in model as "alice-model"."""
    return started_bot(
        "Alice",
        ALICE_DESCRIPTION,
        state_dir=state_dir,
        openai_model="alice-model",
        **llm_settings,
        **settings,
    )


def stream_info(call: ConnectorCall) -> dict[str, Any] | None:
    for entity in call.body.get("entities") or []:
        if entity.get("type") == "streaminfo":
            return dict(entity)
    return None


def in_chat(connector: StandInConnector, conversation_id: str) -> list[ConnectorCall]:
    return [call for call in connector.calls if call.conversation_id == conversation_id]


def in_group(text: str, *, mention: bool, user: TeamsUser | None = None, **activity: Any) -> dict[str, Any]:
    """A message in a group chat, as Teams posts it (with the bot's mention when @mentioned)."""
    body = message_activity(
        f"<at>Alice</at> {text}" if mention else text, conversation_id=GROUP, user=user, **activity
    )
    body["conversation"]["conversationType"] = "groupChat"
    body["conversation"]["isGroup"] = True
    if mention:
        body["entities"] = [
            {"type": "mention", "mentioned": {"id": "28:bot", "name": "Alice"}, "text": "<at>Alice</at>"}
        ]
    return body


async def test_an_answer_in_a_personal_chat_streams_then_ends_in_one_final_message(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_settings: dict,
    service_url: str,
    state_dir: Path,
) -> None:
    llm.script("alice-model", lambda request: say(ANSWER))
    async with alice_on_the_model(state_dir, llm_settings) as alice:
        await user_says(
            http,
            connector,
            alice.url,
            "Per diem for Berlin?",
            conversation_id="a:dana",
            service_url=service_url,
        )
    [request] = llm.requests_for("alice-model")
    assert request["stream"] is True
    calls = in_chat(connector, "a:dana")
    assert stream_info(calls[0]) is None, "the typing indicator, when the message is taken"
    informative, *updates, final = calls[1:]
    assert informative.body["type"] == "typing"
    assert informative.body["channelData"]["streamType"] == "informative"
    assert informative.text == "Alice is writing…"
    stream_id = informative.returned_id
    assert updates, "at least one chunk of text before the end"
    sequences = [stream_info(informative)["streamSequence"]]  # type: ignore[index]
    for update in updates:
        info = stream_info(update)
        assert update.body["type"] == "typing" and info is not None
        assert info["streamId"] == stream_id and info["streamType"] == "streaming"
        sequences.append(info["streamSequence"])
        assert f"**Alice:** {ANSWER}".startswith(update.text), "each update is the text so far"
    assert sequences == list(range(1, len(sequences) + 1))
    assert final.body["type"] == "message"
    assert stream_info(final) == {"type": "streaminfo", "streamId": stream_id, "streamType": "final"}
    assert final.text == f"**Alice:** {ANSWER}"
    assert [call.text for call in connector.sent("a:dana")] == [f"**Alice:** {ANSWER}"], "one message"


async def test_the_offline_model_streams_too(
    http: httpx.AsyncClient, connector: StandInConnector, service_url: str, state_dir: Path
) -> None:
    async with started_bot("Alice", ALICE_DESCRIPTION, state_dir=state_dir) as alice:
        await user_says(
            http,
            connector,
            alice.url,
            "What is the weather?",
            conversation_id="a:dana",
            service_url=service_url,
        )
    streamed = [call for call in in_chat(connector, "a:dana") if stream_info(call)]
    assert streamed[0].body["channelData"]["streamType"] == "informative"
    assert stream_info(streamed[-1])["streamType"] == "final"  # type: ignore[index]
    assert streamed[-1].text.startswith("**Alice:** [offline model] You wrote:")


async def test_where_teams_refuses_streaming_the_answer_goes_as_one_plain_message(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_settings: dict,
    service_url: str,
    state_dir: Path,
) -> None:
    llm.script("alice-model", lambda request: say(ANSWER))
    refused = json.dumps(
        {"error": {"code": "BadArgument", "message": "Streaming is not allowed for this bot"}}
    )
    connector.fail(
        "send_activity", 403, times=10, body=refused, where=lambda call: stream_info(call) is not None
    )
    async with alice_on_the_model(state_dir, llm_settings) as alice:
        await user_says(
            http, connector, alice.url, "Per diem?", conversation_id="a:dana", service_url=service_url
        )
    [message] = connector.sent("a:dana")
    assert message.text == f"**Alice:** {ANSWER}"
    assert stream_info(message) is None, "a plain message, not the end of a stream"


async def test_in_a_group_chat_the_bot_answers_only_when_mentioned_and_without_streaming(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_settings: dict,
    service_url: str,
    state_dir: Path,
) -> None:
    llm.script("alice-model", echo)
    async with alice_on_the_model(state_dir, llm_settings) as alice:
        chatter = await http.post(
            f"{alice.url}/api/messages",
            json=in_group("lunch at noon?", mention=False, service_url=service_url),
        )
        assert chatter.status_code == 200
        asked = await http.post(
            f"{alice.url}/api/messages",
            json=in_group("per diem for Oslo?", mention=True, service_url=service_url),
        )
        assert asked.status_code == 200
        await connector.wait_for(lambda c: len(c.sent(GROUP)) == 1)
    [request] = llm.requests_for("alice-model")
    assert request["messages"][-1]["content"] == "per diem for Oslo?", (
        "the mention is not part of the question"
    )
    [answer] = connector.sent(GROUP)
    assert answer.text == "**Alice:** echo: per diem for Oslo?"
    assert not [call for call in in_chat(connector, GROUP) if stream_info(call)], "no streaming in groups"


async def test_a_handoff_from_a_group_chat_opens_the_askers_1_1_and_keeps_their_context_out_of_the_group(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_settings: dict,
    service_url: str,
    state_dir: Path,
) -> None:
    llm.script("alice-model", tool_then_say("handoff_to_peer", "unused", peer="Bob", summary=VPN_SUMMARY))
    llm.script("bob-model", lambda request: say("Hi Dana, I'm Bob from IT. Which VPN client do you use?"))
    dana = TeamsUser()
    async with alice_and_bob(state_dir, llm_settings) as (alice, _bob):
        body = in_group("my VPN keeps dropping", mention=True, user=dana, service_url=service_url)
        assert (await http.post(f"{alice.url}/api/messages", json=body)).status_code == 200
        await connector.wait_for(lambda c: any("private chat." in call.text for call in c.sent(GROUP)))
        told = connector.sent(GROUP)[-1].text
    [create] = connector.created()
    assert create.body["members"][0]["id"] == dana.aad_object_id, "a 1:1 with the user who asked"
    [greeting] = connector.sent(create.returned_id)
    assert greeting.text.startswith("**Bob:** Hi Dana")
    group = in_chat(connector, GROUP)
    assert told == "**Alice:** Bob has written to Dana Smith in a private chat."
    assert all(VPN_SUMMARY not in json.dumps(call.body) for call in group), "the summary stays private"
    assert all(call.card is None for call in group), "one plain line, no card"


async def test_the_notice_in_a_personal_chat_is_a_card_with_what_was_passed_on_and_a_button_to_the_chat(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_server: Any,
    llm_settings: dict,
    service_url: str,
    state_dir: Path,
    tmp_path: Path,
) -> None:
    """Bob with his app id (so he can name the chat link) takes his token from a stand-in Entra."""
    entra = await StandInEntra(tmp_path / "entra", secret="bob-secret").start()
    bob_id = "00000000-0000-0000-0000-000000000b0b"
    llm.script("alice-model", tool_then_say("handoff_to_peer", "unused", peer="Bob", summary=VPN_SUMMARY))
    llm.script("bob-model", lambda request: say("Hi Dana, I'm Bob."))
    bob = BotProcess(
        "Bob",
        {
            **process_llm_env(llm_server, "bob-model", tmp_path / "b.db"),
            "BOT_DESCRIPTION": BOB_DESCRIPTION,
            "CLIENT_ID": bob_id,
            "CLIENT_SECRET": "bob-secret",
            "TENANT_ID": "tenant-contoso",
            "DANGEROUSLY_ALLOW_UNAUTHENTICATED_REQUESTS": "false",
            **entra.environment(),
        },
        tmp_path,
    )
    try:
        await bob.start()
        async with alice_on_the_model(state_dir, llm_settings, peer_urls=[bob.url]) as alice:
            await user_says(
                http, connector, alice.url, "My VPN drops", conversation_id="a:dana", service_url=service_url
            )
    finally:
        await bob.stop()
        await entra.stop()
    [notice] = connector.sent("a:dana")
    card = notice.card
    assert card is not None and notice.body.get("text") in (None, "")
    assert notice.card_texts[0].startswith("**Alice:** This is a question for Bob.")
    assert notice.card_texts[1:] == ["What Bob was told", VPN_SUMMARY]
    [button] = card["actions"]
    assert button["type"] == "Action.OpenUrl"
    assert button["title"] == "Open the chat with Bob"
    assert button["url"] == f"https://teams.microsoft.com/l/chat/0/0?users=28:{bob_id}"
    [posted] = [
        call
        for call in connector.calls
        if call.conversation_id == "a:dana" and call.kind == "send_activity" and call.card
    ]
    assert posted.card_texts[0] == "**Alice:** Connecting you to Bob…", "the card, before its edit"


async def test_in_teams_each_bot_speaks_under_its_own_name_without_a_prefix(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_settings: dict,
    service_url: str,
    state_dir: Path,
) -> None:
    llm.script("alice-model", lambda request: say(ANSWER))
    async with alice_on_the_model(state_dir, llm_settings, speaker_names=False) as alice:
        await user_says(
            http, connector, alice.url, "Per diem?", conversation_id="a:dana", service_url=service_url
        )
    assert [call.text for call in connector.sent("a:dana")] == [ANSWER]
    assert all("**Alice:**" not in call.text for call in connector.calls)


def edited(activity: dict[str, Any], text: str) -> dict[str, Any]:
    """The messageUpdate Teams posts when the user edits that message."""
    return {
        **activity,
        "type": "messageUpdate",
        "text": text,
        "channelData": {**activity["channelData"], "eventType": "editMessage"},
    }


async def test_an_edit_soon_after_sending_is_answered_as_edited_once_and_a_delete_is_ignored(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_settings: dict,
    service_url: str,
    state_dir: Path,
) -> None:
    llm.script("alice-model", echo)
    async with alice_on_the_model(state_dir, llm_settings) as alice:
        original = message_activity(
            "Train to Lyon on Fridy", conversation_id="a:dana", service_url=service_url
        )
        assert (await http.post(f"{alice.url}/api/messages", json=original)).status_code == 200
        await connector.wait_for(lambda c: len(c.sent("a:dana")) == 1)
        fix = edited(original, "Train to Lyon on Friday")
        for _ in range(2):  # Teams may deliver it twice
            assert (await http.post(f"{alice.url}/api/messages", json=fix)).status_code == 200
        await connector.wait_for(lambda c: len(c.sent("a:dana")) == 2)
        deleted = {**original, "type": "messageDelete", "channelData": {"eventType": "softDeleteMessage"}}
        assert (await http.post(f"{alice.url}/api/messages", json=deleted)).status_code == 200
        marker = message_activity("marker", conversation_id="a:dana", service_url=service_url)
        assert (await http.post(f"{alice.url}/api/messages", json=marker)).status_code == 200
        await connector.wait_for(lambda c: len(c.sent("a:dana")) == 3)
    texts = [call.text for call in connector.sent("a:dana")]
    assert texts == [
        "**Alice:** echo: Train to Lyon on Fridy",
        "**Alice:** echo: (I edited my last message; it now reads:) Train to Lyon on Friday",
        "**Alice:** echo: marker",
    ]


async def test_an_edit_of_a_message_the_bot_never_saw_recently_changes_nothing(
    http: httpx.AsyncClient, connector: StandInConnector, service_url: str, state_dir: Path
) -> None:
    async with started_bot("Alice", ALICE_DESCRIPTION, state_dir=state_dir) as alice:
        old = message_activity("an old message", conversation_id="a:dana", service_url=service_url)
        response = await http.post(f"{alice.url}/api/messages", json=edited(old, "rewritten history"))
    assert response.status_code == 200
    assert connector.calls == []


def test_outside_local_development_messages_carry_no_name_prefix_by_default() -> None:
    common: dict[str, Any] = {
        "bot_name": "Alice",
        "bot_description": "Travel",
        "bot_self_url": "https://alice.contoso.com",
        "client_id": "00000000-0000-0000-0000-0000000a11ce",
        "client_secret": "s",
        "tenant_id": "tenant-contoso",
        "a2a_auth_secret": "x" * 40,
    }
    assert Settings(_env_file=None, **common).names_speakers is False
    assert Settings(_env_file=None, **common, local_development=True).names_speakers is True
