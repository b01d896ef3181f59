"""End to end through Microsoft's Agents Playground: the user's side is the emulator's own REST and
WebSocket interfaces, the bots are real processes started by the same code as `make run`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from scripts.bot_process import free_port
from scripts.local_stack import ROOT, BotPlan, LocalStack, StackPlan, ensure_playground


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackPlan]:
    ensure_playground()
    workdir = tmp_path_factory.mktemp("stack")
    plan = StackPlan(
        bots=(
            BotPlan("Alice", ROOT / "env" / "alice.local.env", free_port(), free_port()),
            BotPlan("Bob", ROOT / "env" / "bob.local.env", free_port(), free_port()),
        ),
        state_dir=workdir / "data",
        log_dir=workdir / "logs",
    )
    stack = LocalStack(plan)
    try:
        stack.start()
        yield plan
    finally:
        stack.stop()


class PlaygroundChat:
    """The user's side of one playground: type as the user, read what bots post."""

    def __init__(self, base_url: str, http: httpx.AsyncClient, ws: Any) -> None:
        self.base_url = base_url
        self.http = http
        self.ws = ws
        self.posted: list[str] = []
        self.edits: list[str] = []

    async def say(self, text: str) -> None:
        config = (await self.http.get(f"{self.base_url}/_internal/v1/config")).json()["config"]
        chat, user = config["personalChat"]["id"], config["currentUser"]["id"]
        response = await self.http.post(
            f"{self.base_url}/_conversation/v1/conversations/{chat}/messages",
            json={"from": {"id": user}, "text": text, "textFormat": "plain"},
        )
        assert response.status_code == 200

    async def until(self, predicate: Any, within: float = 30.0) -> str:
        """Read posted messages (and edits to them, which the playground shows in place) until one
        satisfies the predicate; returns it."""
        async with asyncio.timeout(within):
            while True:
                frame = json.loads(await self.ws.recv())
                if frame.get("action") not in ("createMessage", "updateMessage"):
                    continue
                text = shown_text(frame["message"])
                if frame["action"] == "updateMessage":
                    self.edits.append(text)
                else:
                    self.posted.append(text)
                if predicate(text):
                    return text


def shown_text(message: dict[str, Any]) -> str:
    """The message's text, or else its Adaptive Card's first text block (a handoff notice)."""
    if message.get("text"):
        return str(message["text"])
    for attachment in message.get("attachments") or []:
        for block in (attachment.get("content") or {}).get("body", []):
            if block.get("type") == "TextBlock":
                return str(block.get("text", ""))
    return ""


async def open_chat(url: str, http: httpx.AsyncClient) -> AsyncIterator[PlaygroundChat]:
    ws_url = url.replace("http://", "ws://") + "/_ws_conversation/v1/conversations/stream"
    async with websockets.connect(ws_url) as ws:
        yield PlaygroundChat(url, http, ws)


@pytest.fixture
async def alice_chat(stack: StackPlan, http: httpx.AsyncClient) -> AsyncIterator[PlaygroundChat]:
    async for chat in open_chat(stack.bots[0].playground_url, http):
        yield chat


@pytest.fixture
async def bob_chat(stack: StackPlan, http: httpx.AsyncClient) -> AsyncIterator[PlaygroundChat]:
    async for chat in open_chat(stack.bots[1].playground_url, http):
        yield chat


async def test_it_question_to_alice_brings_bobs_greeting_into_the_users_chat(
    alice_chat: PlaygroundChat, bob_chat: PlaygroundChat
) -> None:
    await alice_chat.say("My laptop can't connect to the VPN since this morning")
    connecting = await alice_chat.until(lambda text: text.startswith("**Alice:**"))
    assert connecting == "**Alice:** Connecting you to Bob…", alice_chat.posted
    notice = await alice_chat.until(lambda text: text.startswith("**Alice:**") and text != connecting)
    assert "Bob will message you directly" in notice, alice_chat.posted
    assert alice_chat.edits == [notice], "the notice was edited in place, not posted again"

    greetings = [text for text in alice_chat.posted if text.startswith("**Bob:**")]
    assert len(greetings) == 1, alice_chat.posted
    assert "taking over from Alice" in greetings[0]
    assert "My laptop can't connect to the VPN since this morning" in greetings[0]

    # Carry on with Bob in his own playground: same chat id, so Bob has the handoff in his history.
    await bob_chat.say("What should I try first?")
    answer = await bob_chat.until(lambda text: text.startswith("**Bob:**"))
    assert "From Alice's handoff I know what you need" in answer
    assert "My laptop can't connect to the VPN since this morning" in answer

    # Nothing was posted twice in the user's chat with Alice.
    assert alice_chat.posted.count(connecting) == 1
    assert alice_chat.posted.count(greetings[0]) == 1


async def test_travel_question_to_alice_is_answered_by_alice_without_handoff(
    alice_chat: PlaygroundChat,
) -> None:
    await alice_chat.say("How do I get my hotel receipts reimbursed?")
    reply = await alice_chat.until(lambda text: text.endswith("in this bot's env file."))
    assert reply.startswith("**Alice:** [offline model]")
    assert "will message you directly" not in reply
    # Streamed: the informative line appears, then grows into the answer in place.
    assert alice_chat.posted == ["Alice is writing…"], alice_chat.posted
    assert alice_chat.edits[-1] == reply and all(reply.startswith(edit) for edit in alice_chat.edits)
    assert not any(text.startswith("**Bob:**") for text in alice_chat.posted)


def test_stack_logs_name_where_they_are(stack: StackPlan) -> None:
    logs = sorted(path.name for path in Path(stack.log_dir).iterdir())
    assert "alice-bot.log" in logs and "bob-bot.log" in logs
    assert "playground-alice.log" in logs


def listening_addresses(port: int) -> set[str]:
    """The local addresses (hex, as the kernel writes them) that listen on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_everything_the_local_stack_starts_listens_on_loopback_only(stack: StackPlan) -> None:
    loopback = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1 and ::1
    for port in stack.ports():
        addresses = listening_addresses(port)
        assert addresses and addresses <= loopback, (port, addresses)


async def test_installing_alice_in_the_playground_brings_her_welcome(
    stack: StackPlan, alice_chat: PlaygroundChat, http: httpx.AsyncClient
) -> None:
    config = (await http.get(f"{stack.bots[0].playground_url}/_internal/v1/config")).json()["config"]
    chat = config["personalChat"]["id"]
    response = await http.post(f"{stack.bots[0].playground_url}/_debug/conversation/{chat}/installation")
    assert response.status_code < 300, response.text
    welcome = await alice_chat.until(lambda text: "Hello, I'm Alice" in text)
    assert welcome.startswith("**Alice:** Hello, I'm Alice: Travel and expenses")
