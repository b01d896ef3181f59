"""The load test script, run small: every user answered, every handoff greeted, nothing twice."""

from __future__ import annotations

import asyncio
import json
import sys

from scripts.bot_process import ROOT


async def test_load_script_reports_no_lost_or_duplicated_messages() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.load_test",
        "--users",
        "60",
        "--json",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 300)
    assert process.returncode == 0, stderr.decode()[-2000:]
    result = json.loads(stdout)
    assert result["users"] == 60
    assert result["handoffs_requested"] == 30
    assert result["lost_user_messages"] == 0
    assert result["lost_greetings"] == 0
    assert result["duplicates"] == 0
    assert result["unexpected_greetings"] == 0
