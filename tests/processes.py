"""Bot processes for the tests that need a real process: restarts, kills, signals, start-up errors."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def process_env(**settings: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "LANG", "TMPDIR")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(settings)
    return env


async def spawn_bot(*args: str, cwd: Path, env: dict[str, str]) -> asyncio.subprocess.Process:
    """``python -m bot ARGS`` with stdout and stderr piped to the test."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def run_bot_to_exit(*args: str, cwd: Path, env: dict[str, str], within: float = 60) -> tuple[int, str]:
    """Run ``python -m bot ARGS`` until it exits (a start-up that must fail, a one-shot command):
    its exit code and stderr."""
    process = await spawn_bot(*args, cwd=cwd, env=env)
    _, stderr = await asyncio.wait_for(process.communicate(), within)
    assert process.returncode is not None
    return process.returncode, stderr.decode()


@dataclass
class BotProcess:
    """``python -m bot`` on a loopback port; its JSON log lines are collected as they come."""

    name: str
    port: int
    settings: dict[str, str]
    cwd: Path
    process: asyncio.subprocess.Process | None = None
    log: list[dict[str, Any]] = field(default_factory=list)
    _reader: asyncio.Task[None] | None = None
    _listening: asyncio.Event = field(default_factory=asyncio.Event)
    _logged: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> BotProcess:
        self._listening = asyncio.Event()
        env = process_env(
            BOT_NAME=self.name,
            BOT_SELF_URL=self.url,
            PORT=str(self.port),
            LOCAL_DEVELOPMENT="true",
            DANGEROUSLY_ALLOW_UNAUTHENTICATED_REQUESTS="true",
            **self.settings,
        )
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            cwd=self.cwd,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.create_task(self._read())
        waiter = asyncio.create_task(self._listening.wait())
        exited = asyncio.create_task(self.process.wait())
        await asyncio.wait({waiter, exited}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        exited.cancel()
        if not self._listening.is_set():
            raise AssertionError(f"{self.name} did not start listening; log: {self.log[-5:]}")
        return self

    async def _read(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        while line := await self.process.stderr.readline():
            try:
                entry = json.loads(line)
            except ValueError:
                entry = {"event": line.decode(errors="replace").strip()}
            self.log.append(entry)
            if str(entry.get("event", "")).startswith("Uvicorn running"):
                self._listening.set()
            async with self._logged:
                self._logged.notify_all()

    async def wait_for_event(self, name: str, within: float = 30) -> dict[str, Any]:
        async with asyncio.timeout(within), self._logged:
            await self._logged.wait_for(lambda: bool(self.events(name)))
        return self.events(name)[0]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [entry for entry in self.log if entry.get("event") == name]

    async def stop(self, sig: int = signal.SIGTERM, within: float = 60) -> int:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(sig)
        code = await asyncio.wait_for(self.process.wait(), within)
        if self._reader is not None:
            await self._reader
        return code

    async def exited(self, within: float = 60) -> int:
        """Wait for the process to end by itself (after a signal the test sent)."""
        assert self.process is not None
        code = await asyncio.wait_for(self.process.wait(), within)
        if self._reader is not None:
            await self._reader
        return code

    async def kill(self) -> None:
        await self.stop(signal.SIGKILL)
