"""Benchmark: how fast is a handoff, how does it scale, how much memory, how fast to start.

    .venv/bin/python -m bench.benchmark            # about a minute; prints a table

Alice and Bob run as real processes with the zero-latency stand-in model and the stand-in Bot
Connector (both in this process). Measured in one run:
- start-up time of each bot, from process spawn to /readyz answering 200;
- idle RSS of each bot after start-up, and peak RSS after the load;
- end-to-end handoff latency (user activity posted to Alice until Bob's greeting reaches the
  connector) at concurrency 1 and 32, p50 and p99;
- time to Alice's first notice ("Connecting you to Bob…", posted as the handoff goes out);
- handoffs per second sustained at concurrency 32, with lost and duplicated greetings counted;
- CPU milliseconds per handoff for each bot (its process CPU time over the concurrency-32 run,
  divided by the handoffs);
- the floor: a bare a2a-sdk SendMessage round trip with the same data part, same machine.
Each figure is the median of ``--runs`` runs (3), with the spread (lowest to highest). With
``--profile DIR`` (default ``bench/profiles``) py-spy samples each bot during the last run's
concurrency-32 load and writes its top functions by own time to ``DIR/<bot>.txt`` (the raw stacks
beside them, for a flame graph).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from a2a.client import ClientConfig, create_client
from a2a.helpers import new_data_part
from a2a.types import Message, Role, SendMessageRequest

from bench.common import ROOT, Stage, UserRun, ask, clear_the_stage, percentile, set_the_stage
from scripts.bot_process import listening_socket, wait_until_healthy_async
from tests.standins.connector import ConnectorCall

HANDOFF_PART = {
    "kind": "handoff",
    "handoffId": "bench",
    "from": "Alice",
    "userName": "Load User",
    "aadObjectId": "aad-1",
    "tenantId": "tenant-contoso",
    "serviceUrl": "https://smba.trafficmanager.net/teams",
    "summary": "The user asked: My laptop can't connect to the VPN",
    "hops": 1,
}


async def floor_round_trips(count: int) -> list[float]:
    sock = listening_socket()
    port = sock.getsockname()[1]
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.floor_server", str(sock.fileno()), cwd=ROOT, pass_fds=(sock.fileno(),)
    )
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_until_healthy_async(
            url, alive=lambda: server.returncode is None, path="/.well-known/agent-card.json"
        )
        async with httpx.AsyncClient() as http:
            client = await create_client(
                f"http://127.0.0.1:{port}", client_config=ClientConfig(streaming=False, httpx_client=http)
            )
            timings = []
            for index in range(count + 10):
                request = SendMessageRequest(
                    message=Message(
                        role=Role.ROLE_USER, message_id=uuid.uuid4().hex, parts=[new_data_part(HANDOFF_PART)]
                    )
                )
                started = time.perf_counter()
                async for _ in client.send_message(request):
                    break
                if index >= 10:  # warm-up excluded
                    timings.append((time.perf_counter() - started) * 1000)
            return timings
    finally:
        server.terminate()
        await server.wait()
        sock.close()


class GreetingWatch:
    """Resolves each user's futures when Alice's first notice reaches the connector in the user's
    chat with her, and when Bob's greeting for them does."""

    def __init__(self, stage: Stage) -> None:
        self.greeted: dict[str, list[float]] = {}
        self._conversation_user: dict[str, str] = {}
        self._waiters: dict[str, asyncio.Future[float]] = {}
        self._notices: dict[str, asyncio.Future[float]] = {}
        stage.connector.listeners.append(self._seen)

    def expect(self, aad: str, chat: str) -> tuple[asyncio.Future[float], asyncio.Future[float]]:
        loop = asyncio.get_running_loop()
        greeting: asyncio.Future[float] = loop.create_future()
        notice: asyncio.Future[float] = loop.create_future()
        self._waiters[aad], self._notices[chat] = greeting, notice
        return notice, greeting

    def _seen(self, call: ConnectorCall) -> None:
        notice = self._notices.get(call.conversation_id or "")
        if notice is not None and call.kind == "send_activity" and call.body.get("type") == "message":
            if not notice.done():
                notice.set_result(call.at)
            return
        if call.kind == "create_conversation" and call.returned_id:
            self._conversation_user[call.returned_id] = call.body["members"][0]["id"]
            return
        aad = self._conversation_user.get(call.conversation_id or "")
        if aad is None or call.body.get("type") != "message":
            return
        self.greeted.setdefault(aad, []).append(call.at)
        waiter = self._waiters.get(aad)
        if waiter is not None and not waiter.done():
            waiter.set_result(call.at)


async def handoffs(
    stage: Stage, watch: GreetingWatch, http: httpx.AsyncClient, *, total: int, concurrency: int
) -> dict[str, Any]:
    queue: asyncio.Queue[UserRun] = asyncio.Queue()
    users = [
        UserRun(f"a:bench-{uuid.uuid4().hex[:10]}", f"aad-{uuid.uuid4().hex[:12]}", True)
        for _ in range(total)
    ]
    for user in users:
        queue.put_nowait(user)
    latencies: list[float] = []
    notices: list[float] = []
    lost = 0

    async def worker() -> None:
        nonlocal lost
        while not queue.empty():
            user = queue.get_nowait()
            noticed, greeted = watch.expect(user.aad_object_id, user.conversation_id)
            await ask(http, stage, user)
            try:
                at = await asyncio.wait_for(greeted, 60)
                latencies.append((at - user.posted_at) * 1000)
                notices.append((await asyncio.wait_for(noticed, 60) - user.posted_at) * 1000)
            except TimeoutError:
                lost += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    duplicates = sum(max(0, len(watch.greeted.get(u.aad_object_id, [])) - 1) for u in users)
    return {
        "p50": percentile(latencies, 0.5),
        "p99": percentile(latencies, 0.99),
        "notice_p50": percentile(notices, 0.5),
        "notice_p99": percentile(notices, 0.99),
        "per_s": total / elapsed,
        "lost": lost,
        "duplicates": duplicates,
        "count": total,
    }


async def run(
    sequential: int, concurrent: int, floor_count: int, profile_dir: Path | None = None
) -> dict[str, Any]:
    floor = await floor_round_trips(floor_count)
    with tempfile.TemporaryDirectory(prefix="handoff-bench-") as folder:
        stage = await set_the_stage(Path(folder), model="standin")
        try:
            bots = {"Alice": stage.alice, "Bob": stage.bob}
            idle = {name: bot.rss_mb() for name, bot in bots.items()}
            ready = {name: bot.ready_after for name, bot in bots.items()}
            watch = GreetingWatch(stage)
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
            async with httpx.AsyncClient(limits=limits) as http:
                await handoffs(stage, watch, http, total=5, concurrency=1)  # warm-up
                one = await handoffs(stage, watch, http, total=sequential, concurrency=1)
                cpu_before = {name: bot.cpu_seconds() for name, bot in bots.items()}
                samplers = (
                    [Sampler(name, bot.process.pid, Path(folder)) for name, bot in bots.items()]
                    if profile_dir is not None
                    else []
                )
                for sampler in samplers:
                    await sampler.start()
                many = await handoffs(stage, watch, http, total=concurrent, concurrency=32)
                for sampler in samplers:
                    await sampler.stop(profile_dir)  # type: ignore[arg-type]
                cpu_ms = {
                    name: (bot.cpu_seconds() - cpu_before[name]) * 1000 / concurrent
                    for name, bot in bots.items()
                }
            peak = {name: bot.peak_rss_mb() for name, bot in bots.items()}
        finally:
            await clear_the_stage(stage)
    return {
        "floor_p50": percentile(floor, 0.5),
        "floor_p99": percentile(floor, 0.99),
        "c1": one,
        "c32": many,
        "cpu_ms": cpu_ms,
        "idle_rss": idle,
        "peak_rss": peak,
        "ready_s": ready,
    }


class Sampler:
    """py-spy sampling one bot process while the load runs; its top functions by own time."""

    def __init__(self, name: str, pid: int, scratch: Path) -> None:
        self.name = name
        self.pid = pid
        self.raw = scratch / f"{name.lower()}.stacks"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.process = await asyncio.create_subprocess_exec(
            py_spy, "record", "--pid", str(self.pid), "--format", "raw", "--rate", "200",
            "--nonblocking", "--output", str(self.raw),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await asyncio.sleep(0.5)  # py-spy attaches before the load starts (not a synchronisation)

    async def stop(self, out_dir: Path) -> None:
        assert self.process is not None
        self.process.send_signal(2)  # SIGINT: py-spy writes what it sampled and exits
        await self.process.wait()
        self.write(out_dir)

    def write(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        text = self.raw.read_text() if self.raw.exists() else ""
        (out_dir / f"{self.name.lower()}.stacks").write_text(text)
        (out_dir / f"{self.name.lower()}.txt").write_text(top_functions(self.name, text))


def top_functions(name: str, stacks: str, count: int = 10) -> str:
    """From py-spy's collapsed stacks: the functions where the samples were (own time), and the
    packages they belong to, each with its share of all samples."""
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in stacks.splitlines():
        frames, _, samples = line.rpartition(" ")
        if not frames or not samples.isdigit():
            continue
        leaf = frames.split(";")[-1]
        total += int(samples)
        own[leaf] += int(samples)
        packages[_package(leaf)] += int(samples)
    if total == 0:
        return f"{name}: no samples (py-spy could not attach?)\n"
    lines = [f"{name}: {total} samples during the concurrency-32 load", "", "top functions by own time:"]
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(count)]
    lines += ["", "by package:"]
    lines += [f"  {100 * n / total:5.1f}%  {package}" for package, n in packages.most_common(count)]
    layers: Counter[str] = Counter()
    for package, n in packages.items():
        layers[next((layer for layer, names in LAYERS.items() if package in names), "other")] += n
    lines += ["", "by layer:"]
    lines += [f"  {100 * n / total:5.1f}%  {layer}" for layer, n in layers.most_common()]
    return "\n".join(lines) + "\n"


LAYERS = {
    "database (SQLAlchemy async, sqlite3 on the loop's thread)": {"aiosqlite", "sqlalchemy"},
    "event loop, HTTP client and server (asyncio, anyio, httpx, httpcore, h11, uvicorn, fastapi)": {
        "asyncio",
        "anyio",
        "httpcore",
        "httpcore2",
        "httpx",
        "httpx2",
        "h11",
        "uvicorn",
        "starlette",
        "fastapi",
        "threading.py",
        "selectors.py",
        "socket.py",
        "ssl.py",
        "aiologic",
    },
    "frameworks (agent-framework, openai, pydantic, a2a-sdk, protobuf, Teams SDK, OpenTelemetry)": {
        "agent_framework",
        "openai",
        "pydantic",
        "pydantic_core",
        "protobuf",
        "google",
        "a2a",
        "api",
        "apps",
        "common",
        "microsoft_teams",
        "trace",
        "opentelemetry",
        "_decorator.py",
    },
    "this project (bot, a2a_bridge)": {"bot", "a2a_bridge"},
}


def _package(frame: str) -> str:
    """``function (path/to/site-packages/pkg/mod.py:12)`` -> ``pkg``; the project's own and the
    standard library's by their top folder."""
    where = frame[frame.rfind("(") + 1 :].rstrip(")")
    path = where.rsplit(":", 1)[0]
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0]
    for own in ("bot/", "a2a_bridge/"):
        if f"/{own}" in path or path.startswith(own):
            return own.rstrip("/")
    return "python (stdlib, interpreter)" if "/lib/python" in path else path.split("/", 1)[0] or "?"


def median_of(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Every number as the median over the runs, with the spread as ``<key>_spread`` (lo, hi)."""

    def merge(values: list[Any]) -> Any:
        first = values[0]
        if isinstance(first, dict):
            merged: dict[str, Any] = {}
            for key in first:
                merged[key] = merge([value[key] for value in values])
                if isinstance(first[key], int | float) and not isinstance(first[key], bool):
                    merged[f"{key}_spread"] = (min(v[key] for v in values), max(v[key] for v in values))
            return merged
        if isinstance(first, int | float) and not isinstance(first, bool):
            return statistics.median(values)
        return first

    return dict(merge(results))


def _spread(parent: dict[str, Any], key: str, unit: str = "") -> str:
    lo, hi = parent.get(f"{key}_spread", (parent[key], parent[key]))
    return f"{parent[key]:.1f}{unit} ({lo:.1f}-{hi:.1f})"


def table(result: dict[str, Any]) -> str:
    floor = result["floor_p50"]
    c1, c32, cpu = result["c1"], result["c32"], result["cpu_ms"]
    rows = [
        ("bare a2a-sdk SendMessage (floor)", f"p50 {_spread(result, 'floor_p50', ' ms')}", "", ""),
        (
            "handoff latency, concurrency 1",
            f"p50 {_spread(c1, 'p50', ' ms')}, p99 {c1['p99']:.1f} ms",
            f"{c1['p50'] / floor:.1f}x floor",
            "p50 <= 3x floor",
        ),
        (
            "first notice, concurrency 1 / 32",
            f"p50 {_spread(c1, 'notice_p50')} / {c32['notice_p50']:.1f} ms, "
            f"p99 {c1['notice_p99']:.1f} / {c32['notice_p99']:.1f} ms",
            "",
            "",
        ),
        (
            "handoff latency, concurrency 32",
            f"p50 {c32['p50']:.1f} ms, p99 {c32['p99']:.1f} ms",
            f"{c32['p50'] / floor:.1f}x floor",
            "",
        ),
        (
            "handoffs/s at concurrency 32",
            f"{_spread(c32, 'per_s', '/s')} ({c32['count']:.0f} handoffs)",
            f"lost {c1['lost'] + c32['lost']:.0f}, duplicated {c1['duplicates'] + c32['duplicates']:.0f}",
            ">= 100/s, 0 lost/dup",
        ),
        (
            "CPU per handoff Alice / Bob",
            f"{_spread(cpu, 'Alice', ' ms')} / {_spread(cpu, 'Bob', ' ms')}",
            f"{cpu['Alice'] + cpu['Bob']:.1f} ms together",
            "<= 10 ms together",
        ),
        (
            "idle RSS Alice / Bob",
            f"{_spread(result['idle_rss'], 'Alice', ' MB')} / {_spread(result['idle_rss'], 'Bob', ' MB')}",
            "",
            "< 120 MB",
        ),
        (
            "peak RSS Alice / Bob",
            f"{result['peak_rss']['Alice']:.0f} MB / {result['peak_rss']['Bob']:.0f} MB",
            "",
            "",
        ),
        (
            "start-up to ready Alice / Bob",
            f"{_spread(result['ready_s'], 'Alice', ' s')} / {_spread(result['ready_s'], 'Bob', ' s')}",
            "",
            "< 1.5 s",
        ),
    ]
    widths = [
        max(len(row[i]) for row in [*rows, ("measure", "result", "ratio / check", "target")])
        for i in range(4)
    ]
    lines = [
        "| "
        + " | ".join(
            h.ljust(w) for h, w in zip(("measure", "result", "ratio / check", "target"), widths, strict=True)
        )
        + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines += [
        "| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |" for row in rows
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sequential", type=int, default=50)
    parser.add_argument("--concurrent", type=int, default=640)
    parser.add_argument("--floor", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3, help="repeat the whole measurement; medians")
    parser.add_argument("--profile", type=Path, default=ROOT / "bench" / "profiles", metavar="DIR")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    runs = []
    for index in range(args.runs):
        last = index == args.runs - 1
        profile = None if args.no_profile or not last else args.profile
        runs.append(asyncio.run(run(args.sequential, args.concurrent, args.floor, profile)))
    result = median_of(runs)
    result["runs"] = args.runs
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"machine: {platform.machine()}, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, {len(__import__('os').sched_getaffinity(0))} cores"
        )
        print(f"medians of {args.runs} runs (spread lowest-highest in brackets)")
        print(table(result))
        if not args.no_profile:
            print(f"profiles (top functions by own time, per bot): {args.profile}/alice.txt, bob.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
