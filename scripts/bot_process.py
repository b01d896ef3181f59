"""Starting a bot process, the one way the tests, the benchmarks and the local stack all do it.

The parent binds the listening socket and hands it to the child (``LISTEN_FD``), so the port is
known before the child starts and nothing else can take it in between. Readiness is the bot's own
health check. Only the standard library: the local stack runs this before any venv exists.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What a bot process inherits from ours; everything else it is given explicitly.
INHERITED = ("PATH", "HOME", "LANG", "TMPDIR")


def listening_socket(port: int = 0, host: str = "127.0.0.1") -> socket.socket:
    """A listening TCP socket on ``host:port`` (0: any free port), inheritable by a child.

    ``OSError`` (EADDRINUSE) at once when the port is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def free_port() -> int:
    """A port free just now, for servers that cannot take an inherited socket (the Node.js
    playground, or a plan whose ports are chosen before anything starts). Prefer
    ``listening_socket`` wherever the server is ours: a port chosen here can be taken meanwhile."""
    with listening_socket() as probe:
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class BotLaunch:
    """Everything needed to start one ``python -m bot`` with ``subprocess`` or ``asyncio``."""

    argv: list[str]
    env: dict[str, str]
    pass_fds: tuple[int, ...]
    url: str

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


def bot_launch(
    *args: str,
    sock: socket.socket | None = None,
    settings: Mapping[str, str] | None = None,
    python: str | Path = sys.executable,
    inherit: Mapping[str, str] | None = None,
) -> BotLaunch:
    """``python -m bot ARGS`` serving on ``sock`` (when given), with ``settings`` as its environment.

    ``inherit`` is the environment to start from (default: PATH, HOME, LANG, TMPDIR of this one)."""
    base = inherit if inherit is not None else {k: v for k, v in os.environ.items() if k in INHERITED}
    env = {**base, "PYTHONPATH": str(ROOT), **(settings or {})}
    fds: tuple[int, ...] = ()
    url = env.get("BOT_SELF_URL", "")
    if sock is not None:
        host, port = sock.getsockname()[:2]
        url = f"http://{host}:{port}"
        env.setdefault("BOT_SELF_URL", url)
        env.update(PORT=str(port), LISTEN_FD=str(sock.fileno()))
        fds = (sock.fileno(),)
    return BotLaunch([str(python), "-m", "bot", *args], env, fds, url)


# Loopback health checks never go through a proxy named in the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def is_healthy(url: str, path: str = "/readyz") -> bool:
    try:
        with _DIRECT.open(f"{url}{path}", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def wait_until_healthy(
    url: str, *, alive: Callable[[], bool], within: float = 60.0, path: str = "/readyz"
) -> float:
    """Seconds until ``url`` answered 200, probing a process we started; ``RuntimeError`` if it
    exited first or was not healthy in time."""
    started = time.monotonic()
    while not is_healthy(url, path):
        if not alive():
            raise RuntimeError(f"{url}: the process exited before it was healthy")
        if time.monotonic() - started > within:
            raise RuntimeError(f"{url}: not healthy within {within:.0f} s")
        time.sleep(0.02)  # the probe interval of a health check, not a wait for an event
    return time.monotonic() - started


async def wait_until_healthy_async(
    url: str, *, alive: Callable[[], bool], within: float = 60.0, path: str = "/readyz"
) -> float:
    """``wait_until_healthy`` for an event loop (each probe runs in a worker thread)."""
    started = time.monotonic()
    while not await asyncio.to_thread(is_healthy, url, path):
        if not alive():
            raise RuntimeError(f"{url}: the process exited before it was healthy")
        if time.monotonic() - started > within:
            raise RuntimeError(f"{url}: not healthy within {within:.0f} s")
        await asyncio.sleep(0.02)  # the probe interval of a health check, not a wait for an event
    return time.monotonic() - started
