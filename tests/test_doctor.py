"""`python -m bot doctor`: a pass/fail line per check, non-zero exit when something is wrong."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx

from bot.config import Settings
from bot.doctor import run_doctor
from scripts.bot_process import listening_socket
from tests.conftest import ALICE_DESCRIPTION, BOB_DESCRIPTION
from tests.harness import started_bot
from tests.standins.openai_server import StandInOpenAI, call_tool, last_message, say

SECRET = "doctor-shared-secret-0123456789-abcdef"
APP_ID = "3f2a6c1e-8b7d-4e5f-9a0b-1c2d3e4f5a6b"


def tool_caller(request: dict[str, Any]) -> dict[str, Any]:
    if last_message(request)["role"] == "tool":
        return say("pong received")
    return call_tool("ping", word="hello")


async def doctor(**values: Any) -> tuple[int, str]:
    out = io.StringIO()
    code = await run_doctor(Settings(_env_file=None, **values), out=out)
    return code, out.getvalue()


async def test_doctor_passes_a_healthy_setup(
    http: httpx.AsyncClient, llm: StandInOpenAI, llm_settings: dict, state_dir: Path
) -> None:
    llm.script("alice-model", tool_caller)
    async with (
        started_bot("Bob", BOB_DESCRIPTION, state_dir=state_dir, a2a_auth_secret=SECRET) as bob,
        started_bot(
            "Alice", ALICE_DESCRIPTION, state_dir=state_dir, peer_urls=[bob.url], a2a_auth_secret=SECRET
        ) as alice,
    ):
        code, report = await doctor(
            bot_name="Alice",
            bot_description=ALICE_DESCRIPTION,
            bot_self_url=alice.url,
            peer_urls=[bob.url],
            local_development=True,
            a2a_auth_secret=SECRET,
            openai_model="alice-model",
            state_url=f"sqlite+aiosqlite:///{state_dir / 'doctor.db'}",
            **llm_settings,
        )
    assert code == 0, report
    assert "PASS  store" in report
    assert "PASS  model: openai reachable and calls tools" in report
    assert f"PASS  peer {bob.url}: Bob: card fetched, A2A endpoint accepts our token" in report
    assert "PASS  BOT_SELF_URL" in report
    assert "PASS  Bot Framework token: no CLIENT_ID (local development): none needed" in report
    assert report.strip().endswith("7 passed, 0 failed")


async def test_doctor_names_each_problem_and_its_fix(
    http: httpx.AsyncClient, llm: StandInOpenAI, llm_settings: dict, state_dir: Path, tmp_path: Path
) -> None:
    llm.script("alice-model", lambda request: say("I will not call tools"))
    dead = listening_socket()
    dead_url = f"http://127.0.0.1:{dead.getsockname()[1]}"
    dead.close()
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    async with started_bot("Bob", BOB_DESCRIPTION, state_dir=state_dir, a2a_auth_secret=SECRET) as bob:
        code, report = await doctor(
            bot_name="Alice",
            bot_description=ALICE_DESCRIPTION,
            bot_self_url=dead_url,
            peer_urls=[bob.url, f"{dead_url}/peer"],
            local_development=True,
            a2a_auth_secret="a-different-secret-0123456789-abcdefgh",
            openai_model="alice-model",
            client_id=APP_ID,
            tenant_id="tenant-contoso",
            client_secret="s",
            manifest_developer_url="https://alice.contoso.com",
            # The bot's own pages are at BOT_SELF_URL, plain http here: Teams needs https ones.
            manifest_privacy_url="https://alice.contoso.com/privacy",
            manifest_terms_url="https://alice.contoso.com/terms",
            state_url=f"sqlite+aiosqlite:///{not_a_dir}/sub/alice.db",
            **llm_settings,
        )
    assert code == 1
    assert "FAIL  store: STATE_URL: cannot create the folder" in report
    assert "FAIL  model: openai answered but did not call the tool" in report
    assert "fix: use a model that supports tool (function) calling" in report
    assert f"FAIL  peer {bob.url}: Bob: A2A endpoint refused the call" in report
    assert "fix: use the same A2A_AUTH_SECRET on both bots" in report
    assert f"FAIL  peer {dead_url}/peer: agent card not fetchable" in report
    assert "FAIL  BOT_SELF_URL" in report
    assert f"PASS  manifest: bot id {APP_ID} matches CLIENT_ID" in report
