"""Running real servers on loopback inside the test's event loop, and talking to them as Teams does."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import select

from a2a_bridge.handoff import HandoffOutcome
from bot.config import Settings
from bot.http_limits import KEEP_ALIVE_SECONDS
from bot.service import BotService, running_bot
from bot.store import Store
from bot.store.schema import handoffs
from scripts.bot_process import listening_socket
from tests.standins.connector import ConnectorCall, StandInConnector

ASGIApp = Callable[..., Any]

# How many generated cases each fuzz target was given; printed in the test summary.
FUZZ_COUNTS: dict[str, int] = {}


class LoopbackServer:
    """A server on a socket bound before it starts: connections queue until it accepts, so a test
    can talk to it the moment it is handed over, with no polling. (asyncio sets TCP_NODELAY on
    connections accepted from an IPPROTO_TCP socket; without it every keep-alive response waits out
    a 40 ms delayed ACK.)"""

    def __init__(self, app: ASGIApp, sock: socket.socket | None = None) -> None:
        self._sock = sock or listening_socket()
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        # A request still held when the server stops (a test that failed before releasing it)
        # must not hang the run: connections get 5 s to finish. Idle connections are kept longer
        # than clients keep them (as the bot process does), so no client reuses one being closed.
        config = uvicorn.Config(
            app,
            log_config=None,
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=5,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> LoopbackServer:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        return self

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
        self._sock.close()


class RequestRecorder:
    """Test-side ASGI wrapper that notes every request a bot receives (method, path), the
    credentials they carried, and what the bot answered on /a2a."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.requests: list[tuple[str, str]] = []
        self.a2a_versions: list[str | None] = []
        """The ``A2A-Version`` header of each POST to /a2a."""
        self.credentials: list[str] = []
        """Every bearer token and push-notification token that came in."""
        self.a2a_answers: list[bytes] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.requests.append((scope["method"], scope["path"]))
        headers = dict(scope["headers"])
        for name in (b"authorization", b"x-a2a-notification-token"):
            value = headers.get(name, b"").decode(errors="replace").removeprefix("Bearer ").strip()
            if value:
                self.credentials.append(value)
        if scope["method"] != "POST" or not scope["path"].startswith("/a2a"):
            await self.app(scope, receive, send)
            return
        if scope["path"].rstrip("/") == "/a2a":
            version = headers.get(b"a2a-version")
            self.a2a_versions.append(version.decode() if version is not None else None)

        async def recording_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                self.a2a_answers.append(bytes(message.get("body", b"")))
            await send(message)

        await self.app(scope, receive, recording_send)

    def count(self, method: str, path: str) -> int:
        return sum(1 for request in self.requests if request == (method, path))


@dataclass
class RunningBot:
    name: str
    url: str
    service: BotService
    recorder: RequestRecorder
    server: LoopbackServer
    _exit: contextlib.AsyncExitStack = field(repr=False)

    @property
    def a2a_calls(self) -> int:
        return self.recorder.count("POST", "/a2a")

    async def stop(self) -> None:
        await self.server.stop()
        await self._exit.aclose()


@contextlib.asynccontextmanager
async def started_bot(
    name: str, description: str, *, state_dir: Path, sock: socket.socket | None = None, **settings: Any
) -> AsyncIterator[RunningBot]:
    bot = await start_bot(name, description, state_dir=state_dir, sock=sock, **settings)
    try:
        yield bot
    finally:
        await bot.stop()


async def start_bot(
    name: str, description: str, *, state_dir: Path, sock: socket.socket | None = None, **settings: Any
) -> RunningBot:
    sock = sock or listening_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    values: dict[str, Any] = {
        "bot_name": name,
        "bot_description": description,
        "bot_self_url": url,
        "local_development": True,
        "dangerously_allow_unauthenticated_requests": True,
        "state_url": f"sqlite+aiosqlite:///{state_dir / name.lower()}.db",
        "peer_retry_seconds": 0,
    }
    values.update(settings)
    exit_stack = contextlib.AsyncExitStack()
    service = await exit_stack.enter_async_context(running_bot(Settings(_env_file=None, **values)))
    recorder = RequestRecorder(service.web)
    server = LoopbackServer(recorder, sock).start()
    return RunningBot(name, url, service, recorder, server, exit_stack)


@dataclass(frozen=True)
class TeamsUser:
    name: str = "Dana Smith"
    user_id: str = "29:dana-teams-id"
    aad_object_id: str = "aad-dana-0001"
    tenant_id: str = "tenant-contoso"


def message_activity(
    text: str,
    *,
    conversation_id: str,
    service_url: str,
    user: TeamsUser | None = None,
    activity_id: str | None = None,
    bot_id: str = "28:bot",
) -> dict[str, Any]:
    """A personal-chat message activity shaped like the ones Teams posts to /api/messages."""
    user = user or TeamsUser()
    return {
        "type": "message",
        "id": activity_id or uuid.uuid4().hex,
        "timestamp": "2026-11-21T10:00:00.000Z",
        "channelId": "msteams",
        "serviceUrl": service_url,
        "from": {"id": user.user_id, "name": user.name, "aadObjectId": user.aad_object_id},
        "conversation": {"id": conversation_id, "conversationType": "personal", "tenantId": user.tenant_id},
        "recipient": {"id": bot_id, "name": "bot"},
        "text": text,
        "textFormat": "plain",
        "locale": "en-US",
        "channelData": {"tenant": {"id": user.tenant_id}},
    }


async def user_says(
    http: httpx.AsyncClient,
    connector: StandInConnector,
    bot_url: str,
    text: str,
    *,
    conversation_id: str,
    replies: int = 1,
    settled: bool = True,
    **activity: Any,
) -> list[ConnectorCall]:
    """Post the user's message as Teams would, then wait for the bot's answer(s) in that chat.

    Turns run in the background, so the HTTP answer comes before the bot's reply; the wait is on the
    connector's record of the reply, not on time. With ``settled`` it also waits until a handoff
    notice ("Connecting you to…") has been edited to its outcome.
    """
    before = len(connector.sent(conversation_id))
    response = await http.post(
        f"{bot_url}/api/messages",
        json=message_activity(text, conversation_id=conversation_id, **activity),
    )
    assert response.status_code == 200, response.text
    await connector.wait_for(lambda c: len(c.sent(conversation_id)) >= before + replies, within=30)
    if settled:
        await notice_settled(connector, conversation_id)
    return connector.sent(conversation_id)[before:]


CONNECTING = "Connecting you to"


async def notice_settled(connector: StandInConnector, conversation_id: str, within: float = 30) -> str:
    """Wait until the chat has a message and none still says "Connecting you to…"; its last text."""
    await connector.wait_for(
        lambda c: (
            bool(c.sent(conversation_id))
            and not any(CONNECTING in call.text for call in c.sent(conversation_id))
        ),
        within=within,
    )
    return connector.sent(conversation_id)[-1].text


@contextlib.asynccontextmanager
async def alice_and_bob(
    state_dir: Path, model_settings: dict[str, Any] | None = None, **alice_settings: Any
) -> AsyncIterator[tuple[RunningBot, RunningBot]]:
    """Bob, then Alice with Bob as her peer. With ``model_settings`` both talk to the stand-in model
    (as models "alice-model" and "bob-model"); without, both run the offline model."""
    from tests.conftest import ALICE_DESCRIPTION, BOB_DESCRIPTION

    bob_model = {"openai_model": "bob-model", **model_settings} if model_settings else {}
    alice_model = {"openai_model": "alice-model", **model_settings} if model_settings else {}
    async with (
        started_bot("Bob", BOB_DESCRIPTION, state_dir=state_dir, **bob_model) as bob,
        started_bot(
            "Alice",
            ALICE_DESCRIPTION,
            state_dir=state_dir,
            peer_urls=[bob.url],
            **alice_model,
            **alice_settings,
        ) as alice,
    ):
        yield alice, bob


class WrittenLogs(logging.Handler):
    """Every log record as the bot writes it out (its JSON line, every structured field and
    ``extra=`` included), and every attribute of the record besides, for tests that look for
    what must never be logged."""

    def __init__(self) -> None:
        from bot.logs import json_formatter

        super().__init__(logging.DEBUG)
        self.setFormatter(json_formatter("test"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
        self.lines.append(repr({key: value for key, value in record.__dict__.items() if key != "exc_info"}))


@contextlib.contextmanager
def written_logs() -> Any:
    """Log as a bot at LOG_LEVEL=DEBUG does (``bot.logs.configure_logging``: the most it ever writes)."""
    from bot.logs import NOISY_LOGGERS

    handler = WrittenLogs()
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", *NOISY_LOGGERS)}
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def logged(records: list[logging.LogRecord], event: str | None = None) -> list[dict[str, Any]]:
    """The structured fields of captured log records (structlog hands the stdlib its event dict),
    optionally only those of one event."""
    entries = [
        dict(record.msg) if isinstance(record.msg, dict) else {"event": record.getMessage()}
        for record in records
    ]
    return [entry for entry in entries if event is None or entry.get("event") == event]


async def recorded_handoff_outcomes(store: Store) -> list[HandoffOutcome]:
    """The handoffs a bot received and finished, newest first, read straight from its ledger."""
    async with store.engine.connect() as connection:
        rows = await connection.execute(
            select(handoffs.c.outcome)
            .where(handoffs.c.status != "pending")
            .order_by(handoffs.c.created_at.desc())
        )
        return [HandoffOutcome.model_validate_json(raw) for raw in rows.scalars()]


def answer_parts(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The parts of a JSON-RPC answer's message, in any shape A2A gives it: a 1.0 ``message`` or
    ``task`` (its status message), or a 0.3 result of ``kind`` message or task."""
    assert "result" in body, body
    result = body["result"]
    if "message" in result:
        return list(result["message"]["parts"])
    if "task" in result:
        return list(result["task"]["status"]["message"]["parts"])
    if result.get("kind") == "task":
        return list(result["status"]["message"]["parts"])
    return list(result["parts"])


def outcome_in(body: dict[str, Any]) -> dict[str, Any]:
    """The ``handoffOutcome`` data part of an answer."""
    return next(part["data"] for part in answer_parts(body) if isinstance(part.get("data"), dict))


class LogEvents(logging.Handler):
    """Lets a test wait for a bot (in this process) to log an event: a signal, not a sleep."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.seen: list[dict[str, Any]] = []
        self._changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, dict):
            self.seen.append(dict(record.msg))
            self._changed.set()

    async def wait_for(self, event: str, within: float = 30.0) -> dict[str, Any]:
        async with asyncio.timeout(within):
            while True:
                found = [entry for entry in self.seen if entry.get("event") == event]
                if found:
                    return found[0]
                self._changed.clear()
                await self._changed.wait()


@contextlib.contextmanager
def log_events() -> Any:
    handler = LogEvents()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(min(previous, logging.INFO) or logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
