"""The README's operating commands work exactly as printed, from a shell where nothing is activated."""

from __future__ import annotations

import asyncio
import re

import pytest

from scripts.bot_process import ROOT

README = (ROOT / "README.md").read_text()
# Every command line the README prints that starts the venv's own executables.
COMMANDS = sorted(
    {line.split("#")[0].strip() for line in re.findall(r"^\.venv/bin/\S+[^\n]*", README, flags=re.M)}
)


def test_the_readme_prints_its_commands_with_the_venvs_own_executables() -> None:
    assert any(" -m bot --env-file" in command for command in COMMANDS)
    assert any(" -m bot doctor" in command for command in COMMANDS)
    assert any(" -m bot manifest" in command for command in COMMANDS)
    assert not re.search(r"^python -m bot", README, flags=re.M), "no command that needs an activated venv"


@pytest.mark.parametrize(
    "command",
    [c for c in COMMANDS if " -m bot doctor" in c or " -m bot manifest" in c],
)
async def test_an_operating_command_runs_without_an_activated_venv(command: str) -> None:
    """Run as printed from the repository root, with a PATH that has no venv on it: the bot's own
    answer (a check report, or the placeholder error of the production env file), never an import
    error."""
    process = await asyncio.create_subprocess_exec(
        *command.split(),
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    text = out.decode()
    assert "ModuleNotFoundError" not in text and "Traceback" not in text, text
    assert process.returncode == 2 and "still placeholders" in text, text
