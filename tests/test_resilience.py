"""Bad days: restarts, retries, slow or broken models, a peer killed mid-handoff, Teams throttling,
a broken store, SIGTERM in the middle of a turn. Each ends in the right message, exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi.responses import JSONResponse
from sqlalchemy.engine import make_url

from tests.conftest import ALICE_DESCRIPTION, BOB_DESCRIPTION
from tests.harness import (
    alice_and_bob,
    log_events,
    logged,
    message_activity,
    notice_settled,
    started_bot,
    user_says,
)
from tests.processes import BotProcess, process_env, run_bot_to_exit
from tests.standins.connector import StandInConnector
from tests.standins.openai_server import StandInOpenAI, garbage, held_until, last_message, say, tool_then_say
from tests.test_a2a_endpoint import A2A_HEADERS, handoff, outcome_of, send_message
from tests.test_store import postgres_url

VPN = "My VPN keeps disconnecting"


def echo(request: dict[str, Any]) -> dict[str, Any]:
    return say(f"echo: {last_message(request)['content']}")


def process_llm_env(llm_server: Any, model: str, state: Path, **more: str) -> dict[str, str]:
    return {
        "BOT_DESCRIPTION": ALICE_DESCRIPTION,
        "OPENAI_BASE_URL": f"{llm_server[1].url}/v1",
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_MODEL": model,
        "STATE_URL": f"sqlite+aiosqlite:///{state}",
        **more,
    }


def alice_process(llm_server: Any, tmp_path: Path) -> BotProcess:
    """Alice as a process on the stand-in model ``alice-model``, her state in ``tmp_path``."""
    return BotProcess("Alice", process_llm_env(llm_server, "alice-model", tmp_path / "a.db"), tmp_path)


async def test_history_survives_a_restart_of_the_bot_process(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_server: Any,
    service_url: str,
    tmp_path: Path,
) -> None:
    llm.script("alice-model", echo)
    alice = alice_process(llm_server, tmp_path)
    await alice.start()
    await user_says(
        http,
        connector,
        alice.url,
        "I fly to Oslo on Monday.",
        conversation_id="a:dana",
        service_url=service_url,
    )
    assert await alice.stop() == 0

    await alice.start()
    try:
        [reply] = await user_says(
            http, connector, alice.url, "Where do I fly?", conversation_id="a:dana", service_url=service_url
        )
        assert reply.text == "**Alice:** echo: Where do I fly?"
        history = [m.get("content") for m in llm.requests_for("alice-model")[-1]["messages"]]
        assert "I fly to Oslo on Monday." in history
        assert "echo: I fly to Oslo on Monday." in history
    finally:
        await alice.stop()


async def test_a_retried_handoff_after_a_restart_greets_nobody_twice(
    http: httpx.AsyncClient, connector: StandInConnector, service_url: str, state_dir: Path
) -> None:
    request = send_message({"data": handoff(service_url)}, message_id="retried")
    async with started_bot("Bob", BOB_DESCRIPTION, state_dir=state_dir) as bob:
        first = outcome_of(await http.post(f"{bob.url}/a2a", headers=A2A_HEADERS, json=request))
    async with started_bot("Bob", BOB_DESCRIPTION, state_dir=state_dir) as bob_again:
        second = outcome_of(await http.post(f"{bob_again.url}/a2a", headers=A2A_HEADERS, json=request))
    assert first == second
    assert first["status"] == "delivered"
    assert len(connector.created()) == 1
    assert len(connector.sent()) == 1


async def test_a_teams_activity_delivered_twice_is_answered_once(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_settings: dict,
    service_url: str,
    state_dir: Path,
) -> None:
    llm.script("alice-model", tool_then_say("handoff_to_peer", "x", peer="Bob", summary="VPN broken"))
    llm.script("bob-model", lambda request: say("Hi, Bob here."))
    async with alice_and_bob(state_dir, llm_settings) as (alice, bob):
        activity = message_activity(
            VPN, conversation_id="a:dana", service_url=service_url, activity_id="act-42"
        )
        responses = await asyncio.gather(
            *(http.post(f"{alice.url}/api/messages", json=activity) for _ in range(3))
        )
        assert [r.status_code for r in responses] == [200, 200, 200]
        await connector.wait_for(lambda c: len(c.sent("a:dana")) >= 1)
        await notice_settled(connector, "a:dana")
        late = await http.post(f"{alice.url}/api/messages", json=activity)
        assert late.status_code == 200
        # Every delivery was accepted before this point, and a duplicate never schedules a turn.
        assert len(connector.sent("a:dana")) == 1
        assert len(llm.requests_for("alice-model")) == 1  # the tool call; the turn ends at the handoff
        assert bob.a2a_calls == 1
        assert len(connector.created()) == 1


async def test_a_slow_model_does_not_hold_the_request_and_turns_stay_in_order(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_settings: dict,
    service_url: str,
    state_dir: Path,
) -> None:
    gate = asyncio.Event()
    llm.script("alice-model", held_until(gate, echo))
    async with started_bot(
        "Alice", ALICE_DESCRIPTION, state_dir=state_dir, openai_model="alice-model", **llm_settings
    ) as alice:
        for text in ("first question", "second question"):
            response = await http.post(
                f"{alice.url}/api/messages",
                json=message_activity(text, conversation_id="a:dana", service_url=service_url),
            )
            assert response.status_code == 200
        await llm.wait_for_requests("alice-model", 1)
        assert connector.sent("a:dana") == [], "the model has not answered yet, so neither has Alice"
        gate.set()
        await connector.wait_for(lambda c: len(c.sent("a:dana")) == 2)
        first_reply, second_reply = connector.sent("a:dana")
        assert [first_reply.text, second_reply.text] == [
            "**Alice:** echo: first question",
            "**Alice:** echo: second question",
        ]
        assert len(llm.arrivals) == 2
        assert llm.arrivals[1] > first_reply.at, (
            "the second turn's model request started only after the first turn's reply was sent"
        )


async def test_throttled_connector_is_retried_after_retry_after_and_greets_once(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    service_url: str,
    state_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    connector.fail("create_conversation", 429, times=2, headers={"Retry-After": "1"})
    async with alice_and_bob(state_dir) as (alice, _bob):
        [notice] = await user_says(
            http, connector, alice.url, VPN, conversation_id="a:dana", service_url=service_url
        )
    assert "Bob will message you directly" in notice.text
    assert len(connector.created()) == 3
    greetings = [c for c in connector.sent() if c.conversation_id != "a:dana"]
    assert len(greetings) == 1
    waits = [entry["wait_s"] for entry in logged(caplog.records, "connector_retry")]
    assert waits == [1.0, 1.0]


async def test_connector_failing_every_time_is_told_to_the_user_without_hanging(
    http: httpx.AsyncClient, connector: StandInConnector, service_url: str, state_dir: Path
) -> None:
    connector.fail("create_conversation", 500, times=1000)
    async with alice_and_bob(state_dir) as (alice, _bob):
        [notice] = await user_says(
            http, connector, alice.url, VPN, conversation_id="a:dana", service_url=service_url
        )
    assert "did not work" in notice.text
    assert "Teams was busy when Bob tried to reach you" in notice.text
    assert len(connector.created()) == 1, "a 500 is an answer, not retried"


@pytest.mark.parametrize("fault", ["timeout", "garbage", "error-500"])
async def test_a_broken_model_gets_an_apology_and_the_conversation_stays_usable(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_settings: dict,
    service_url: str,
    state_dir: Path,
    fault: str,
) -> None:
    never = asyncio.Event()
    broken = {
        "timeout": held_until(never, echo),
        "garbage": garbage,
        "error-500": lambda request: JSONResponse({"error": {"message": "overloaded"}}, status_code=500),
    }[fault]

    llm.script("alice-model", broken)
    async with started_bot(
        "Alice",
        ALICE_DESCRIPTION,
        state_dir=state_dir,
        openai_model="alice-model",
        model_timeout_seconds=0.5,
        **llm_settings,
    ) as alice:
        [apology] = await user_says(
            http, connector, alice.url, "Book a hotel", conversation_id="a:dana", service_url=service_url
        )
        assert apology.text.startswith("**Alice:** Sorry, something went wrong on my side")
        llm.script("alice-model", echo)
        [answer] = await user_says(
            http,
            connector,
            alice.url,
            "Book a hotel, please",
            conversation_id="a:dana",
            service_url=service_url,
        )
        assert answer.text == "**Alice:** echo: Book a hotel, please"
    never.set()


def bob_process(llm_server: Any, tmp_path: Path, **more: str) -> BotProcess:
    return BotProcess(
        "Bob",
        {
            **process_llm_env(llm_server, "bob-model", tmp_path / "b.db"),
            "BOT_DESCRIPTION": BOB_DESCRIPTION,
            **more,
        },
        tmp_path,
    )


def greetings_in(connector: StandInConnector, user_chat: str) -> list[str]:
    return [call.text for call in connector.sent() if call.conversation_id != user_chat]


async def test_bob_killed_mid_task_ends_the_notice_with_the_honest_state_and_a_later_handoff_works(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_server: Any,
    llm_settings: dict,
    service_url: str,
    state_dir: Path,
    tmp_path: Path,
) -> None:
    gate = asyncio.Event()
    llm.script("alice-model", tool_then_say("handoff_to_peer", "x", peer="Bob", summary="VPN broken"))
    llm.script("bob-model", held_until(gate, lambda request: say("Hi Dana, Bob here.")))
    bob = bob_process(llm_server, tmp_path)
    await bob.start()
    try:
        async with started_bot(
            "Alice",
            ALICE_DESCRIPTION,
            state_dir=state_dir,
            openai_model="alice-model",
            peer_urls=[bob.url],
            peer_timeout_seconds=1,
            handoff_poll_seconds=0.2,
            **llm_settings,
        ) as alice:
            with log_events() as events:
                await http.post(
                    f"{alice.url}/api/messages",
                    json=message_activity(VPN, conversation_id="a:dana", service_url=service_url),
                )
                await events.wait_for("handoff_in_progress")  # Bob took it: a working task
            await llm.wait_for_requests("bob-model", 1)  # and is greeting
            await bob.kill()
            text = await notice_settled(connector, "a:dana")
            assert "I've passed what you told me to Bob, but" in text, "not a failure: it is not known"
            assert "Bob's bot stopped answering before confirming that it reached you" in text
            [notice] = connector.sent("a:dana")
            assert [edit.returned_id for edit in connector.updates("a:dana")] == [notice.returned_id]

            gate.set()
            await bob.start()
            [later] = await user_says(
                http,
                connector,
                alice.url,
                "Still broken, can Bob help?",
                conversation_id="a:dana",
                service_url=service_url,
            )
            assert "Bob will message you directly" in later.text
            assert greetings_in(connector, "a:dana") == ["**Bob:** Hi Dana, Bob here."]
    finally:
        await bob.stop()


async def test_bob_restarted_mid_task_has_it_taken_over_after_the_lease_and_it_ends_once(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_server: Any,
    llm_settings: dict,
    service_url: str,
    state_dir: Path,
    tmp_path: Path,
) -> None:
    gate = asyncio.Event()
    llm.script("alice-model", tool_then_say("handoff_to_peer", "x", peer="Bob", summary="VPN broken"))
    llm.script("bob-model", held_until(gate, lambda request: say("Hi Dana, Bob here.")))
    bob = bob_process(llm_server, tmp_path, HANDOFF_LEASE_SECONDS="1")
    await bob.start()
    try:
        async with started_bot(
            "Alice",
            ALICE_DESCRIPTION,
            state_dir=state_dir,
            openai_model="alice-model",
            peer_urls=[bob.url],
            **llm_settings,
        ) as alice:
            with log_events() as events:
                await http.post(
                    f"{alice.url}/api/messages",
                    json=message_activity(VPN, conversation_id="a:dana", service_url=service_url),
                )
                await events.wait_for("handoff_in_progress")
            await llm.wait_for_requests("bob-model", 1)
            await bob.kill()
            gate.set()  # the dead Bob's greeting turn answers into the void; the next one at once
            await bob.start()
            taken = await bob.wait_for_event("handoff_lease_taken_over")
            text = await notice_settled(connector, "a:dana")
            assert "Bob will message you directly" in text
            assert greetings_in(connector, "a:dana") == ["**Bob:** Hi Dana, Bob here."]
            assert len(connector.updates("a:dana")) == 1
            assert await alice.service.store.sent.get(taken["handoff_id"]) is not None, "Alice's handoff"
    finally:
        await bob.stop()


async def test_alice_killed_mid_task_resumes_on_restart_and_edits_the_notice(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_server: Any,
    llm_settings: dict,
    service_url: str,
    state_dir: Path,
    tmp_path: Path,
) -> None:
    gate = asyncio.Event()
    llm.script("alice-model", tool_then_say("handoff_to_peer", "x", peer="Bob", summary="VPN broken"))
    llm.script("bob-model", held_until(gate, lambda request: say("Hi Dana, Bob here.")))
    async with started_bot(
        "Bob", BOB_DESCRIPTION, state_dir=state_dir, openai_model="bob-model", **llm_settings
    ) as bob:
        alice = BotProcess(
            "Alice",
            process_llm_env(
                llm_server, "alice-model", tmp_path / "a.db", PEER_URLS=bob.url, HANDOFF_POLL_SECONDS="0.3"
            ),
            tmp_path,
        )
        await alice.start()
        try:
            await http.post(
                f"{alice.url}/api/messages",
                json=message_activity(VPN, conversation_id="a:dana", service_url=service_url),
            )
            await alice.wait_for_event("handoff_in_progress")
            await llm.wait_for_requests("bob-model", 1)
            await alice.kill()
            gate.set()
            await connector.wait_for(lambda c: len(greetings_in(c, "a:dana")) == 1)
            await alice.start()
            await alice.wait_for_event("handoff_resumed")
            text = await notice_settled(connector, "a:dana")
            assert "Bob will message you directly" in text
            [notice] = connector.sent("a:dana")
            assert [edit.returned_id for edit in connector.updates("a:dana")] == [notice.returned_id]
        finally:
            await alice.stop()


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Read-only even for root: the immutable attribute (root ignores plain permissions)."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(path)], check=True)
    else:
        path.chmod(0o444)
    try:
        yield
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        else:
            path.chmod(0o644)


async def test_a_read_only_store_stops_start_up_with_a_clear_error(tmp_path: Path) -> None:
    database = tmp_path / "alice.db"
    alice = BotProcess(
        "Alice",
        {"BOT_DESCRIPTION": "Travel", "STATE_URL": f"sqlite+aiosqlite:///{database}"},
        tmp_path,
    )
    await alice.start()
    assert await alice.stop() == 0
    with read_only(database):
        code, stderr = await run_bot_to_exit(
            cwd=tmp_path,
            env=process_env(
                BOT_NAME="Alice",
                BOT_DESCRIPTION="Travel",
                BOT_SELF_URL="http://127.0.0.1:1",
                LOCAL_DEVELOPMENT="true",
                STATE_URL=f"sqlite+aiosqlite:///{database}",
            ),
        )
    assert code == 2
    assert "start-up error: STATE_URL: cannot open" in stderr
    assert "readonly database" in stderr


async def test_an_unreachable_database_at_start_stops_start_up(tmp_path: Path) -> None:
    code, stderr = await run_bot_to_exit(
        cwd=tmp_path,
        env=process_env(
            BOT_NAME="Alice",
            BOT_DESCRIPTION="Travel",
            BOT_SELF_URL="http://127.0.0.1:1",
            LOCAL_DEVELOPMENT="true",
            STATE_URL="postgresql+asyncpg://bot:pw@127.0.0.1:1/bot",
        ),
    )
    assert code == 2
    assert "start-up error: STATE_URL: cannot open postgresql+asyncpg://bot:***@127.0.0.1:1/bot" in stderr


async def test_a_database_gone_mid_run_fails_the_turn_visibly_and_the_bot_stays_up(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    llm: StandInOpenAI,
    llm_settings: dict,
    service_url: str,
    state_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    base = make_url(postgres_url())
    database = f"gone_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(host=base.host, port=base.port, user=base.username, database=base.database)
    await admin.execute(f'CREATE DATABASE "{database}"')
    llm.script("alice-model", echo)
    try:
        async with started_bot(
            "Alice",
            ALICE_DESCRIPTION,
            state_dir=state_dir,
            openai_model="alice-model",
            state_url=base.set(database=database).render_as_string(hide_password=False),
            **llm_settings,
        ) as alice:
            await user_says(
                http, connector, alice.url, "hello", conversation_id="a:dana", service_url=service_url
            )
            await admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
            [reply] = await user_says(
                http,
                connector,
                alice.url,
                "are you there?",
                conversation_id="a:dana",
                service_url=service_url,
            )
            assert reply.text.startswith("**Alice:** Sorry, something went wrong on my side")
            assert (await http.get(f"{alice.url}/healthz")).status_code == 200
            ready = await http.get(f"{alice.url}/readyz")
            assert ready.status_code == 503 and ready.json()["store"] == "unreachable"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
    assert logged(caplog.records, "store_failure")


async def test_sigterm_during_a_turn_finishes_the_turn_before_exiting(
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
    await http.post(
        f"{alice.url}/api/messages",
        json=message_activity("Book me a train to Lyon", conversation_id="a:dana", service_url=service_url),
    )
    await llm.wait_for_requests("alice-model", 1)
    assert alice.process is not None
    alice.process.send_signal(signal.SIGTERM)
    await alice.wait_for_event("turns_draining")
    gate.set()
    assert await alice.exited() == 0
    assert [c.text for c in connector.sent("a:dana")] == ["**Alice:** echo: Book me a train to Lyon"]
    assert alice.events("turn_abandoned") == []

    llm.script("alice-model", echo)
    await alice.start()
    try:
        await user_says(
            http, connector, alice.url, "And back?", conversation_id="a:dana", service_url=service_url
        )
        history = [m.get("content") for m in llm.requests_for("alice-model")[-1]["messages"]]
        assert "echo: Book me a train to Lyon" in history
    finally:
        await alice.stop()
