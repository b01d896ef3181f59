"""Shared by the load test and the benchmark: real bot processes on loopback, the stand-in Bot
Connector and a zero-latency stand-in model in this process, and a user who posts to Alice."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from scripts.bot_process import ROOT, bot_launch, listening_socket, wait_until_healthy_async
from tests.harness import LoopbackServer, message_activity
from tests.standins.connector import StandInConnector
from tests.standins.openai_server import StandInOpenAI, last_message, say, tool_then_say

ALICE = "Travel and expenses: business trips, flights, hotels, trains, rental cars, visas, expense reports."
BOB = "IT and devices: laptops, phones, monitors, printers, Wi-Fi, VPN, passwords, accounts, software."
IT_QUESTION = "My laptop can't connect to the VPN"
TRAVEL_QUESTION = "How do I get my hotel receipts reimbursed?"


@dataclass
class Bot:
    name: str
    sock: socket.socket
    process: asyncio.subprocess.Process
    started: float
    ready_after: float = 0.0
    lines: list[str] = field(default_factory=list)
    drain: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def rss_mb(self) -> float:
        """Resident memory now, from /proc (Linux)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far, from /proc (Linux)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")


async def start_bot(
    name: str, description: str, sock: socket.socket, peers: list[str], state: Path, **settings: str
) -> Bot:
    launch = bot_launch(
        sock=sock,
        settings={
            "BOT_NAME": name,
            "BOT_DESCRIPTION": description,
            "PEER_URLS": ",".join(peers),
            "LOCAL_DEVELOPMENT": "true",
            "DANGEROUSLY_ALLOW_UNAUTHENTICATED_REQUESTS": "true",
            "STATE_URL": f"sqlite+aiosqlite:///{state}",
            "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
            **settings,
        },
    )
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *launch.argv,
        cwd=ROOT,
        env=launch.env,
        pass_fds=launch.pass_fds,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    bot = Bot(name, sock, process, started)
    bot.drain = asyncio.create_task(_drain(bot))
    try:
        await wait_until_healthy_async(bot.url, alive=lambda: process.returncode is None)
    except RuntimeError as error:
        raise RuntimeError(f"{name}: {error}: {bot.lines[-5:]}") from None
    bot.ready_after = time.perf_counter() - started
    return bot


async def _drain(bot: Bot) -> None:
    assert bot.process.stderr is not None
    while line := await bot.process.stderr.readline():
        bot.lines.append(line.decode(errors="replace"))


async def stop_bot(bot: Bot) -> None:
    if bot.process.returncode is None:
        bot.process.send_signal(signal.SIGTERM)
    await asyncio.wait_for(bot.process.wait(), 60)


@dataclass
class Stage:
    """Alice and Bob as processes, with the connector and the model stand-ins in this process."""

    connector: StandInConnector
    connector_server: LoopbackServer
    llm_server: LoopbackServer | None
    alice: Bot
    bob: Bot

    @property
    def service_url(self) -> str:
        return f"{self.connector_server.url}/bench"


async def set_the_stage(workdir: Path, *, model: str) -> Stage:
    """``model``: "offline" (the built-in model) or "standin" (zero-latency OpenAI-compatible server)."""
    connector = StandInConnector()
    connector_server = LoopbackServer(connector.app).start()
    llm_server = None
    alice_settings: dict[str, str] = {}
    bob_settings: dict[str, str] = {}
    if model == "standin":
        llm = StandInOpenAI()

        def alice_script(request: dict[str, Any]) -> dict[str, Any]:
            first_user = next(m for m in request["messages"] if m["role"] == "user")["content"]
            if "VPN" in first_user:
                return tool_then_say(
                    "handoff_to_peer", "ok", peer="Bob", summary=f"The user asked: {first_user}"
                )(request)
            return say("Send them to expenses@contoso.test within 30 days.")

        llm.script("alice", alice_script)
        llm.script("bob", lambda request: say(f"Hi, Bob here. {last_message(request)['content'][:40]}"))
        llm_server = LoopbackServer(llm.app).start()
        common = {"OPENAI_BASE_URL": f"{llm_server.url}/v1", "OPENAI_API_KEY": "sk-bench"}
        alice_settings = {**common, "OPENAI_MODEL": "alice"}
        bob_settings = {**common, "OPENAI_MODEL": "bob"}
    alice_sock, bob_sock = listening_socket(), listening_socket()
    alice_url = f"http://127.0.0.1:{alice_sock.getsockname()[1]}"
    bob_url = f"http://127.0.0.1:{bob_sock.getsockname()[1]}"
    bob, alice = await asyncio.gather(
        start_bot(
            "Bob",
            BOB,
            bob_sock,
            [alice_url],
            workdir / "bob.db",
            A2A_RATE_LIMIT_PER_MINUTE="1000000",  # the load is one caller: Alice
            # The load is one tenant: paced as for Teams, it would measure Teams' limits, not the bot.
            CONNECTOR_RATE_PER_TENANT="0",
            CONNECTOR_RATE_PER_CONVERSATION="0",
            **bob_settings,
        ),
        start_bot(
            "Alice",
            ALICE,
            alice_sock,
            [bob_url],
            workdir / "alice.db",
            A2A_RATE_LIMIT_PER_MINUTE="1000000",
            CONNECTOR_RATE_PER_TENANT="0",
            CONNECTOR_RATE_PER_CONVERSATION="0",
            **alice_settings,
        ),
    )
    return Stage(connector, connector_server, llm_server, alice, bob)


async def clear_the_stage(stage: Stage) -> None:
    await asyncio.gather(stop_bot(stage.alice), stop_bot(stage.bob))
    stage.alice.sock.close()
    stage.bob.sock.close()
    await stage.connector_server.stop()
    if stage.llm_server is not None:
        await stage.llm_server.stop()


@dataclass
class UserRun:
    conversation_id: str
    aad_object_id: str
    wants_handoff: bool
    posted_at: float = 0.0
    replied_at: float | None = None
    greeted_at: float | None = None


async def ask(http: httpx.AsyncClient, stage: Stage, user: UserRun) -> None:
    """One user's message to Alice; the answer is recorded by ``track``."""
    from tests.harness import TeamsUser

    text = IT_QUESTION if user.wants_handoff else TRAVEL_QUESTION
    activity = message_activity(
        text,
        conversation_id=user.conversation_id,
        service_url=stage.service_url,
        user=TeamsUser(
            name="Load User", user_id=f"29:{user.aad_object_id}", aad_object_id=user.aad_object_id
        ),
    )
    user.posted_at = time.perf_counter()
    response = await http.post(f"{stage.alice.url}/api/messages", json=activity, timeout=120)
    response.raise_for_status()


def new_users(count: int, *, handoff_share: float) -> list[UserRun]:
    cut = round(count * handoff_share)
    return [
        UserRun(f"a:load-{uuid.uuid4().hex[:10]}", f"aad-{i:05d}-{uuid.uuid4().hex[:6]}", i < cut)
        for i in range(count)
    ]


def account(stage: Stage, users: list[UserRun]) -> dict[str, Any]:
    """What reached the connector, per user: replies in their chat with Alice, greetings from Bob."""
    by_conversation = {u.conversation_id: u for u in users}
    by_aad = {u.aad_object_id: u for u in users}
    greeting_conversations: dict[str, UserRun] = {}
    for call in stage.connector.created():
        user = by_aad.get(call.body["members"][0]["id"])
        if user is not None and call.returned_id:
            greeting_conversations[call.returned_id] = user
    replies: dict[str, int] = {}
    greetings: dict[str, int] = {}
    for call in stage.connector.sent():
        if call.conversation_id in by_conversation:
            replies[call.conversation_id] = replies.get(call.conversation_id, 0) + 1
        elif call.conversation_id in greeting_conversations:
            aad = greeting_conversations[call.conversation_id].aad_object_id
            greetings[aad] = greetings.get(aad, 0) + 1
    lost_messages = sum(1 for u in users if replies.get(u.conversation_id, 0) == 0)
    lost_greetings = sum(1 for u in users if u.wants_handoff and greetings.get(u.aad_object_id, 0) == 0)
    duplicates = sum(max(0, n - 1) for n in replies.values()) + sum(max(0, n - 1) for n in greetings.values())
    unexpected_greetings = sum(1 for u in users if not u.wants_handoff and greetings.get(u.aad_object_id, 0))
    return {
        "users": len(users),
        "lost_user_messages": lost_messages,
        "lost_greetings": lost_greetings,
        "duplicates": duplicates,
        "unexpected_greetings": unexpected_greetings,
    }


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def dump(result: dict[str, Any]) -> str:
    return json.dumps(result, indent=2, default=str)
