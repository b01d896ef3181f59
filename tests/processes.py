"""Bot processes for the tests that need a real process: restarts, kills, signals, start-up errors."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.bot_process import bot_launch, listening_socket, wait_until_healthy_async


def process_env(**settings: str) -> dict[str, str]:
    """The environment of a bot process started by a test: this one's PATH and HOME, and ``settings``."""
    return bot_launch(settings=settings).env


async def spawn_bot(*args: str, cwd: Path, env: dict[str, str]) -> asyncio.subprocess.Process:
    """``python -m bot ARGS`` with stdout and stderr piped to the test."""
    launch = bot_launch(*args, inherit=env)
    return await asyncio.create_subprocess_exec(
        *launch.argv,
        cwd=cwd,
        env=launch.env,
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
    """``python -m bot`` on a loopback port chosen when the test creates it, and kept across
    restarts; its JSON log lines are collected as they come.

    The socket is bound here and handed to the process, which then holds the only copy: while the
    process is down (killed, restarting), connections are refused, as they would be in production."""

    name: str
    settings: dict[str, str]
    cwd: Path
    args: tuple[str, ...] = ()
    """Command-line arguments after ``python -m bot`` (e.g. ``--env-file``)."""
    _sock: socket.socket | None = field(default_factory=listening_socket)
    port: int = 0
    process: asyncio.subprocess.Process | None = None
    log: list[dict[str, Any]] = field(default_factory=list)
    _reader: asyncio.Task[None] | None = None
    _logged: asyncio.Condition = field(default_factory=asyncio.Condition)

    def __post_init__(self) -> None:
        assert self._sock is not None
        self.port = int(self._sock.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> BotProcess:
        sock = self._sock or listening_socket(self.port)
        self._sock = None
        launch = bot_launch(
            *self.args,
            sock=sock,
            settings={
                "BOT_NAME": self.name,
                "LOCAL_DEVELOPMENT": "true",
                "DANGEROUSLY_ALLOW_UNAUTHENTICATED_REQUESTS": "true",
                **self.settings,
            },
        )
        self.process = await asyncio.create_subprocess_exec(
            *launch.argv,
            cwd=self.cwd,
            env=launch.env,
            pass_fds=launch.pass_fds,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        sock.close()
        self._reader = asyncio.create_task(self._read())
        process = self.process
        try:
            await wait_until_healthy_async(
                self.url, alive=lambda: process.returncode is None, path="/healthz"
            )
        except RuntimeError as error:
            raise AssertionError(f"{self.name}: {error}; log: {self.log[-5:]}") from None
        return self

    async def _read(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        while line := await self.process.stderr.readline():
            try:
                entry = json.loads(line)
            except ValueError:
                entry = {"event": line.decode(errors="replace").strip()}
            self.log.append(entry)
            async with self._logged:
                self._logged.notify_all()

    def rss_mb(self) -> float:
        """Resident memory now, from /proc (Linux)."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    async def wait_for_event(self, name: str, within: float = 30) -> dict[str, Any]:
        async with asyncio.timeout(within), self._logged:
            await self._logged.wait_for(lambda: bool(self.events(name)))
        return self.events(name)[0]

    async def wait_until(self, check: Callable[[BotProcess], bool], within: float = 30) -> None:
        """Wait until ``check`` holds of this process (its log, typically)."""
        async with asyncio.timeout(within), self._logged:
            await self._logged.wait_for(lambda: check(self))

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
