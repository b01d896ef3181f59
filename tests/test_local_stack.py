"""`make run` / `make stop` as a user drives them: a second run, a stop from another terminal, a
closed terminal. The stack runs without playgrounds here (the e2e test covers those) on free ports."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from pathlib import Path

from scripts.bot_process import ROOT, free_port

STACK = [sys.executable, str(ROOT / "scripts" / "local_stack.py")]


class Run:
    def __init__(self, state_file: Path) -> None:
        self.ports = [free_port() for _ in range(4)]
        self.state_file = state_file
        self.output: list[str] = []
        self.process: asyncio.subprocess.Process | None = None

    def args(self, command: str) -> list[str]:
        ports = ",".join(map(str, self.ports))
        return [*STACK, command, "--no-playground", "--ports", ports, "--state-file", str(self.state_file)]

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.args("run"), cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        assert self.process.stdout is not None
        async with asyncio.timeout(120):
            while True:
                line = (await self.process.stdout.readline()).decode()
                assert line, f"the stack exited before it was up: {self.output}"
                self.output.append(line)
                if "everything is up" in line:
                    return

    async def exit_code(self) -> int:
        assert self.process is not None and self.process.stdout is not None
        rest, _ = await asyncio.wait_for(self.process.communicate(), 60)
        self.output.extend(rest.decode().splitlines())
        assert self.process.returncode is not None
        return self.process.returncode

    def bots_listening(self) -> list[int]:
        busy = []
        for port in self.ports[:2]:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    busy.append(port)
        return busy


async def command(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *args, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_a_second_run_is_refused_and_stop_from_another_terminal_stops_the_first_cleanly(
    tmp_path: Path,
) -> None:
    first = Run(tmp_path / "stack.json")
    await first.start()
    assert first.bots_listening() == first.ports[:2]

    code, out = await command(*first.args("run"))
    assert code == 1 and "already running" in out and "make stop" in out
    assert first.state_file.exists(), "the refused run left the first run's record alone"

    code, out = await command(*first.args("stop"))
    assert code == 0 and "stopped" in out
    assert await first.exit_code() == 0
    text = "".join(first.output)
    assert "stopped unexpectedly" not in text and "stopped." in text
    assert first.bots_listening() == []
    assert not first.state_file.exists()

    code, out = await command(*first.args("stop"))
    assert code == 0 and "nothing to stop" in out


async def test_closing_the_terminal_stops_everything_the_run_started(tmp_path: Path) -> None:
    run = Run(tmp_path / "stack.json")
    await run.start()
    assert run.process is not None
    run.process.send_signal(signal.SIGHUP)
    assert await run.exit_code() == 0
    assert run.bots_listening() == []
    assert not run.state_file.exists()
