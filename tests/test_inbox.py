"""Every message Alice accepts (answers 2xx for) is answered exactly once: across SIGKILL and
restarts, with and without Teams' redelivery, and when what fails is not Teams being unreachable.

"Exactly once" is checked with a marker: after the answers, the user sends one more message in each
chat and waits for its answer. A chat's turns run in order, so any second answer to an earlier
message would have come before the marker's.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import message_activity
from tests.processes import BotProcess
from tests.standins.connector import StandInConnector
from tests.standins.openai_server import StandInOpenAI, held_until
from tests.test_resilience import alice_process, echo

CHATS = ("a:dana", "a:lee")
CUT_SHORT = '{"id": "activity-'


def answers(connector: StandInConnector, conversation_id: str) -> list[str]:
    return [call.text for call in connector.sent(conversation_id)]


async def marker_answered(
    http: httpx.AsyncClient, connector: StandInConnector, bot: BotProcess, service_url: str
) -> None:
    """One more message per chat, answered: every earlier turn has ended before it."""
    for chat in CHATS:
        response = await http.post(
            f"{bot.url}/api/messages",
            json=message_activity("marker", conversation_id=chat, service_url=service_url),
        )
        assert response.status_code == 200
    await connector.wait_for(
        lambda c: all(answers(c, chat)[-1:] == ["**Alice:** echo: marker"] for chat in CHATS), within=30
    )


@pytest.mark.parametrize("redelivered", [False, True], ids=["restart-only", "restart-and-redelivery"])
async def test_turns_in_flight_when_alice_is_killed_are_answered_once_after_the_restart(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_server: Any,
    service_url: str,
    tmp_path: Path,
    redelivered: bool,
) -> None:
    gate = asyncio.Event()
    llm.script("alice-model", held_until(gate, echo))
    alice = alice_process(llm_server, tmp_path)
    await alice.start()
    messages = [
        message_activity("Book me a train to Lyon", conversation_id="a:dana", service_url=service_url),
        message_activity("And a hotel near the station", conversation_id="a:dana", service_url=service_url),
        message_activity("Is the office open on Friday?", conversation_id="a:lee", service_url=service_url),
    ]
    for activity in messages:
        response = await http.post(f"{alice.url}/api/messages", json=activity)
        assert response.status_code == 200, "accepted: Teams will not send it again by itself"
    # Dana's first turn and Lee's are with the model; Dana's second waits behind her first.
    await llm.wait_for_requests("alice-model", 2)
    await alice.kill()
    assert answers(connector, "a:dana") == answers(connector, "a:lee") == []

    gate.set()
    await alice.start()
    if redelivered:
        for activity in messages:
            response = await http.post(f"{alice.url}/api/messages", json=activity)
            assert response.status_code == 200
    try:
        await marker_answered(http, connector, alice, service_url)
        assert answers(connector, "a:dana") == [
            "**Alice:** echo: Book me a train to Lyon",
            "**Alice:** echo: And a hotel near the station",
            "**Alice:** echo: marker",
        ]
        assert answers(connector, "a:lee") == [
            "**Alice:** echo: Is the office open on Friday?",
            "**Alice:** echo: marker",
        ]
        await alice.wait_until(lambda bot: len(bot.events("turn_resumed")) == 3)
        if redelivered:
            # Each redelivery joined its turn (already running again in the restarted process).
            await alice.wait_until(lambda bot: len(bot.events("activity_duplicate")) == 3)
    finally:
        await alice.stop()


async def test_a_redelivery_while_the_turn_runs_joins_it_and_the_user_gets_one_answer(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_server: Any,
    service_url: str,
    tmp_path: Path,
) -> None:
    gate = asyncio.Event()
    llm.script("alice-model", held_until(gate, echo))
    alice = alice_process(llm_server, tmp_path)
    await alice.start()
    try:
        activity = message_activity(
            "Book me a train to Lyon", conversation_id="a:dana", service_url=service_url
        )
        assert (await http.post(f"{alice.url}/api/messages", json=activity)).status_code == 200
        await llm.wait_for_requests("alice-model", 1)
        # Teams gave up waiting for the 200 (it came late) and sends the same activity again.
        assert (await http.post(f"{alice.url}/api/messages", json=activity)).status_code == 200
        [joined] = alice.events("activity_duplicate")
        assert joined["turn"] == "still running: joined"
        gate.set()
        await connector.wait_for(lambda c: len(answers(c, "a:dana")) == 1)
        await marker_answered(http, connector, alice, service_url)
        assert answers(connector, "a:dana") == [
            "**Alice:** echo: Book me a train to Lyon",
            "**Alice:** echo: marker",
        ]
        assert len(llm.requests_for("alice-model")) == 3, "one model run per message (and the markers)"
    finally:
        await alice.stop()


async def test_an_unreadable_answer_to_typing_is_no_5xx_and_the_turn_is_still_answered(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_server: Any,
    service_url: str,
    tmp_path: Path,
) -> None:
    """A failure that is not an HTTP error: Teams' answer cut short, so the SDK cannot read it."""
    llm.script("alice-model", echo)
    connector.fail(
        "send_activity",
        201,
        body=CUT_SHORT,
        where=lambda call: call.body.get("type") == "typing",
    )
    alice = alice_process(llm_server, tmp_path)
    await alice.start()
    try:
        activity = message_activity(
            "Book me a train to Lyon", conversation_id="a:dana", service_url=service_url
        )
        response = await http.post(f"{alice.url}/api/messages", json=activity)
        assert response.status_code == 200
        await connector.wait_for(lambda c: len(answers(c, "a:dana")) == 1)
        [skipped] = alice.events("send_skipped")
        assert skipped["what"] == "typing"
    finally:
        await alice.stop()


async def test_a_reply_that_fails_oddly_is_logged_and_the_chat_goes_on(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_server: Any,
    service_url: str,
    tmp_path: Path,
) -> None:
    llm.script("alice-model", echo)
    connector.fail(
        "send_activity",
        201,
        body=CUT_SHORT,
        where=lambda call: call.body.get("type") == "message",
    )
    alice = alice_process(llm_server, tmp_path)
    await alice.start()
    try:
        activity = message_activity(
            "Book me a train to Lyon", conversation_id="a:dana", service_url=service_url
        )
        assert (await http.post(f"{alice.url}/api/messages", json=activity)).status_code == 200
        failure = await alice.wait_for_event("reply_failure")
        assert failure["level"] == "error"
        await marker_answered(http, connector, alice, service_url)
        # Teams may or may not have shown it (the answer was unreadable): it is not sent twice.
        assert answers(connector, "a:dana") == [
            "**Alice:** echo: Book me a train to Lyon",
            "**Alice:** echo: marker",
        ]
        assert alice.events("turn_crashed") == []
    finally:
        await alice.stop()
