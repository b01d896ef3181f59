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
- the floor: a bare a2a-sdk SendMessage round trip with the same data part, same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
import uuid
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


async def run(sequential: int, concurrent: int, floor_count: int) -> dict[str, Any]:
    floor = await floor_round_trips(floor_count)
    with tempfile.TemporaryDirectory(prefix="handoff-bench-") as folder:
        stage = await set_the_stage(Path(folder), model="standin")
        try:
            idle = {"Alice": stage.alice.rss_mb(), "Bob": stage.bob.rss_mb()}
            ready = {"Alice": stage.alice.ready_after, "Bob": stage.bob.ready_after}
            watch = GreetingWatch(stage)
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
            async with httpx.AsyncClient(limits=limits) as http:
                await handoffs(stage, watch, http, total=5, concurrency=1)  # warm-up
                one = await handoffs(stage, watch, http, total=sequential, concurrency=1)
                many = await handoffs(stage, watch, http, total=concurrent, concurrency=32)
            peak = {"Alice": stage.alice.peak_rss_mb(), "Bob": stage.bob.peak_rss_mb()}
        finally:
            await clear_the_stage(stage)
    return {
        "floor_p50": percentile(floor, 0.5),
        "floor_p99": percentile(floor, 0.99),
        "c1": one,
        "c32": many,
        "idle_rss": idle,
        "peak_rss": peak,
        "ready_s": ready,
    }


def table(result: dict[str, Any]) -> str:
    floor = result["floor_p50"]
    c1, c32 = result["c1"], result["c32"]
    rows = [
        ("bare a2a-sdk SendMessage (floor)", f"p50 {floor:.1f} ms, p99 {result['floor_p99']:.1f} ms", "", ""),
        (
            "handoff latency, concurrency 1",
            f"p50 {c1['p50']:.1f} ms, p99 {c1['p99']:.1f} ms",
            f"{c1['p50'] / floor:.1f}x floor",
            "p50 <= 3x floor",
        ),
        (
            "first notice, concurrency 1 / 32",
            f"p50 {c1['notice_p50']:.1f} / {c32['notice_p50']:.1f} ms, "
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
            f"{c32['per_s']:.1f}/s ({c32['count']} handoffs)",
            f"lost {c1['lost'] + c32['lost']}, duplicated {c1['duplicates'] + c32['duplicates']}",
            ">= 100/s, 0 lost/dup",
        ),
        (
            "idle RSS Alice / Bob",
            f"{result['idle_rss']['Alice']:.0f} MB / {result['idle_rss']['Bob']:.0f} MB",
            "",
            "< 150 MB",
        ),
        (
            "peak RSS Alice / Bob",
            f"{result['peak_rss']['Alice']:.0f} MB / {result['peak_rss']['Bob']:.0f} MB",
            "",
            "",
        ),
        (
            "start-up to ready Alice / Bob",
            f"{result['ready_s']['Alice']:.2f} s / {result['ready_s']['Bob']:.2f} s",
            "",
            "< 3 s",
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
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(run(args.sequential, args.concurrent, args.floor))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"machine: {platform.machine()}, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, {len(__import__('os').sched_getaffinity(0))} cores"
        )
        print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
