"""Starting a bot process: configuration errors are one clear line; the chosen env file wins."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import httpx
import pytest

from scripts.bot_process import ROOT, free_port
from tests.processes import process_env, run_bot_to_exit, spawn_bot

LOCAL = {
    "BOT_NAME": "Alice",
    "BOT_DESCRIPTION": "Travel",
    "BOT_SELF_URL": "http://127.0.0.1:3978",
    "LOCAL_DEVELOPMENT": "true",
}
TENANT = "contoso-tenant-id"


@pytest.mark.parametrize(
    ("missing", "expected"),
    [
        ("BOT_NAME", "BOT_NAME: missing (required)"),
        ("BOT_SELF_URL", "BOT_SELF_URL: missing (required)"),
        ("LOCAL_DEVELOPMENT", "CLIENT_ID: required"),
        ("A2A_AUTH_SECRET", "A2A_AUTH_SECRET: required"),
    ],
)
async def test_missing_setting_stops_startup_naming_the_variable(
    tmp_path: Path, missing: str, expected: str
) -> None:
    production = {
        **LOCAL,
        "CLIENT_ID": "app-id",
        "CLIENT_SECRET": "app-secret",
        "TENANT_ID": TENANT,
        "LOCAL_DEVELOPMENT": "false",
    }
    base = production if missing == "A2A_AUTH_SECRET" else LOCAL
    env = process_env(**{key: value for key, value in base.items() if key != missing})
    code, stderr = await run_bot_to_exit(cwd=tmp_path, env=env)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("configuration error: ")
    assert expected in lines[0]


@pytest.mark.parametrize(
    ("setting", "value", "expected", "extra"),
    [
        ("PORT", "eighty", "PORT: Input should be a valid integer", {}),
        ("BOT_SELF_URL", "alice.example.com", "BOT_SELF_URL: 'alice.example.com' is not an absolute", {}),
        ("CLIENT_ID", "app-id-only", "CLIENT_SECRET: required when CLIENT_ID is set", {"TENANT_ID": TENANT}),
        (
            "CLIENT_ID",
            "single-tenant-app",
            "TENANT_ID: required for APP_TYPE=SingleTenant",
            {"CLIENT_SECRET": "s"},
        ),
        (
            "MANAGED_IDENTITY_CLIENT_ID",
            "mi-id",
            "CLIENT_SECRET and MANAGED_IDENTITY_CLIENT_ID: set one",
            {"CLIENT_ID": "id", "CLIENT_SECRET": "s", "TENANT_ID": TENANT},
        ),
        (
            "MANAGED_IDENTITY_CLIENT_ID",
            "id",
            "equals CLIENT_ID, which is a bot whose identity is the managed identity",
            {"CLIENT_ID": "id", "TENANT_ID": TENANT},
        ),
        (
            "APP_TYPE",
            "UserAssignedMSI",
            "CLIENT_SECRET: not used with APP_TYPE=UserAssignedMSI",
            {"CLIENT_ID": "id", "CLIENT_SECRET": "s", "TENANT_ID": TENANT},
        ),
        (
            "APP_TYPE",
            "multitenant",
            "TENANT_ID: leave it empty for APP_TYPE=MultiTenant",
            {"CLIENT_ID": "id", "CLIENT_SECRET": "s", "TENANT_ID": TENANT},
        ),
        (
            "APP_TYPE",
            "Personal",
            "APP_TYPE: Input should be 'SingleTenant', 'MultiTenant' or 'UserAssignedMSI'",
            {},
        ),
        (
            "CLOUD",
            "Mars",
            "CLOUD: 'Mars' is not a cloud; use one of Public, USGov, USGovHigh, USGovDoD, China",
            {},
        ),
        ("CLOUD", "china", "SERVICE_URL_ALLOWLIST: required with CLOUD=China", {}),
        ("A2A_AUTH_SECRET", "short", "A2A_AUTH_SECRET: must be at least 32 characters", {}),
        ("OPENAI_MODEL", "gpt-4o-mini", "OPENAI_API_KEY: required for OpenAI", {}),
        (
            "DANGEROUSLY_ALLOW_UNAUTHENTICATED_REQUESTS",
            "true",
            "DANGEROUSLY_ALLOW_UNAUTHENTICATED_REQUESTS: only",
            {
                "LOCAL_DEVELOPMENT": "false",
                "A2A_AUTH_SECRET": "x" * 40,
                "CLIENT_ID": "id",
                "CLIENT_SECRET": "s",
                "TENANT_ID": TENANT,
            },
        ),
        (
            "DANGEROUSLY_ALLOW_UNAUTHENTICATED_REQUESTS",
            "true",
            "not allowed with CLIENT_ID",
            {"CLIENT_ID": "id", "CLIENT_SECRET": "s", "TENANT_ID": TENANT},
        ),
    ],
)
async def test_invalid_setting_stops_startup_naming_the_variable(
    tmp_path: Path, setting: str, value: str, expected: str, extra: dict[str, str]
) -> None:
    code, stderr = await run_bot_to_exit(cwd=tmp_path, env=process_env(**{**LOCAL, **extra, setting: value}))
    assert code == 2
    assert expected in stderr


async def test_shipped_production_env_file_refuses_its_placeholders(tmp_path: Path) -> None:
    code, stderr = await run_bot_to_exit(
        "--env-file", str(ROOT / "env" / "alice.env"), cwd=tmp_path, env=process_env()
    )
    assert code == 2
    assert "still placeholders, replace each with the real value" in stderr
    for name in ("CLIENT_ID", "CLIENT_SECRET", "TENANT_ID", "OPENAI_API_KEY", "A2A_AUTH_SECRET"):
        assert f"{name} (<" in stderr, f"{name} is named in the same run"
    assert len(stderr.strip().splitlines()) == 1, "one line"


async def test_chosen_env_file_wins_over_a_stray_dotenv_in_the_working_directory(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / ".env").write_text("BOT_NAME=Mallory\nCLIENT_ID=stray-app-id\nPEER_URLS=http://127.0.0.1:1\n")
    env_file = tmp_path / "alice.env"
    env_file.write_text(
        f"BOT_NAME=Alice\nBOT_DESCRIPTION=Travel\nBOT_SELF_URL=http://127.0.0.1:{port}\nPORT={port}\n"
        f"LOCAL_DEVELOPMENT=true\nSTATE_URL=sqlite+aiosqlite:///{tmp_path}/alice.db\n"
    )
    process = await spawn_bot("--env-file", str(env_file), cwd=tmp_path, env=process_env())
    try:
        assert process.stderr is not None
        async with asyncio.timeout(60):
            while b"Uvicorn running" not in (line := await process.stderr.readline()):
                assert line, "the bot exited before it started listening"
        async with httpx.AsyncClient() as http:
            card = (await http.get(f"http://127.0.0.1:{port}/.well-known/agent-card.json")).json()
            ready = (await http.get(f"http://127.0.0.1:{port}/readyz")).json()
        assert card["name"] == "Alice"
        assert ready["peers"] == []
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)
    assert process.returncode == 0


def test_objects_alive_at_start_up_are_frozen_out_of_later_collections() -> None:
    """Walked by every full collection, a started bot's 250,000 objects made each one a pause of
    about 200 ms in every request in flight."""
    from bot.__main__ import GC_YOUNG_THRESHOLD, _settle_after_start_up

    threshold = gc.get_threshold()
    try:
        _settle_after_start_up()
        assert gc.get_freeze_count() > 10_000
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, threshold[1], threshold[2])
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
