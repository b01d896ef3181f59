"""A persona author's edit reaches the running bot without a restart, and a bad edit never takes it
down: the description and ``prompts/`` are read again on a file change or on SIGHUP."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path
from typing import Any

import httpx

from bot.prompts import prompts_directory
from tests.harness import TeamsUser, user_says
from tests.processes import BotProcess
from tests.standins.connector import StandInConnector
from tests.test_welcome import installed

OLD = "Travel and expenses: flights, hotels, trains."
NEW = "Travel, expenses and company cars: flights, hotels, trains, car pool."


def save(path: Path, text: str) -> None:
    """Save as editors do: write a new file, rename it over the old one."""
    draft = path.with_name(f".{path.name}.draft")
    draft.write_text(text, encoding="utf-8")
    os.replace(draft, path)


def persona_files(tmp_path: Path, **more: str) -> tuple[Path, Path]:
    prompts = tmp_path / "prompts"
    shutil.copytree(
        prompts_directory(), prompts, ignore=shutil.ignore_patterns("*.py", "__pycache__", "routing")
    )
    env_file = tmp_path / "alice.env"
    save(env_file, f"BOT_DESCRIPTION={OLD}\n" + "".join(f"{k}={v}\n" for k, v in more.items()))
    return prompts, env_file


def alice_process(tmp_path: Path, prompts: Path, env_file: Path, **settings: str) -> BotProcess:
    return BotProcess(
        "Alice",
        {"STATE_URL": f"sqlite+aiosqlite:///{tmp_path / 'a.db'}", "PROMPTS_DIR": str(prompts), **settings},
        tmp_path,
        args=("--env-file", str(env_file)),
    )


async def card(http: httpx.AsyncClient, bot: BotProcess, **headers: str) -> httpx.Response:
    return await http.get(f"{bot.url}/.well-known/agent-card.json", headers={"A2A-Version": "1.0", **headers})


def reloaded(bot: BotProcess, *, description: bool = False, prompt: str | None = None) -> bool:
    events = bot.events("persona_reloaded")
    return (not description or any(e["description_changed"] for e in events)) and (
        prompt is None or any(prompt in e["prompts_changed"] for e in events)
    )


async def test_edited_words_reach_the_next_turn_and_the_card_and_a_bad_edit_keeps_the_old_ones(
    http: httpx.AsyncClient, connector: StandInConnector, service_url: str, tmp_path: Path
) -> None:
    prompts, env_file = persona_files(tmp_path)
    alice = await alice_process(tmp_path, prompts, env_file).start()
    try:
        await alice.wait_for_event("persona_watching")
        before = await card(http, alice)
        assert before.json()["description"] == OLD
        [reply] = await user_says(
            http, connector, alice.url, "hello", conversation_id="a:dana", service_url=service_url
        )
        assert OLD in reply.text

        save(env_file, f"BOT_DESCRIPTION={NEW}\n")
        save(prompts / "welcome.txt", "Hi, {bot_name} here, with freshly edited words: {bot_description}")
        await alice.wait_until(lambda bot: reloaded(bot, description=True, prompt="welcome"))

        after = await card(http, alice, **{"If-None-Match": before.headers["etag"]})
        assert after.status_code == 200, "the old ETag no longer matches"
        assert after.json()["description"] == NEW
        assert after.headers["etag"] != before.headers["etag"]
        [reply] = await user_says(
            http, connector, alice.url, "hello again", conversation_id="a:dana", service_url=service_url
        )
        assert NEW in reply.text, "a new turn uses the new description"
        welcome = await http.post(
            f"{alice.url}/api/messages", json=installed(service_url, "a:eve", TeamsUser())
        )
        assert welcome.status_code == 200
        await connector.wait_for(lambda c: bool(c.sent("a:eve")))
        assert connector.sent("a:eve")[0].text.endswith(f"Hi, Alice here, with freshly edited words: {NEW}")

        save(prompts / "instructions.txt", "You are {bot_name}. {persona}")
        await alice.wait_for_event("persona_reload_refused")
        [refused] = alice.events("persona_reload_refused")
        assert "instructions.txt uses unknown placeholder(s) ['persona']" in refused["error"]
        assert refused["level"] == "error"
        assert (await http.get(f"{alice.url}/healthz")).status_code == 200
        assert (await card(http, alice)).json()["description"] == NEW
        [reply] = await user_says(
            http, connector, alice.url, "still there?", conversation_id="a:dana", service_url=service_url
        )
        assert NEW in reply.text, "the bot carries on with the words it had"
    finally:
        assert await alice.stop() == 0


async def test_sighup_reloads_when_files_are_not_watched_and_says_what_needs_a_restart(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    prompts, env_file = persona_files(tmp_path)
    alice = await alice_process(tmp_path, prompts, env_file, PERSONA_WATCH="false").start()
    try:
        save(env_file, f"BOT_DESCRIPTION={NEW}\nPEER_TIMEOUT_SECONDS=5\n")
        assert alice.process is not None
        alice.process.send_signal(signal.SIGHUP)
        await alice.wait_until(lambda bot: reloaded(bot, description=True))
        assert not alice.events("persona_watching")
        assert (await card(http, alice)).json()["description"] == NEW
        [ignored] = alice.events("persona_reload_ignores")
        assert ignored["settings"] == ["PEER_TIMEOUT_SECONDS"]

        save(env_file, "BOT_DESCRIPTION=\n")
        alice.process.send_signal(signal.SIGHUP)
        event: dict[str, Any] = await alice.wait_for_event("persona_reload_refused")
        assert "BOT_DESCRIPTION" in event["error"]
        assert (await card(http, alice)).json()["description"] == NEW
    finally:
        assert await alice.stop() == 0
