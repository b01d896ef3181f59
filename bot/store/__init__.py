"""Everything the bot must remember across restarts, one capability per part, over one engine.

History, the activity ledger, the handoff ledgers (received and sent), consent and the A2A
tasks live in one SQL database chosen by ``STATE_URL``: SQLite by default, PostgreSQL
(``postgresql+asyncpg://...``) for several replicas of one bot. Both run the same code through
SQLAlchemy's async engine. The schema is brought up to date by alembic at start-up (``migrate.py``).
Callers see ``StoreError``, never a driver's error.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from a2a.server.tasks import PushNotificationConfigStore
from sqlalchemy import event, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from a2a_bridge.push_configs import HandoffPushConfigStore
from a2a_bridge.tasks import HandoffTaskStore
from bot.store.activities import ActivityLedger, Owner
from bot.store.clock import now
from bot.store.consent import ConsentState, ConsentStore, PendingHandoff
from bot.store.errors import StoreError, reason
from bot.store.handoffs import HandoffLedgerStore
from bot.store.history import HistoryStore
from bot.store.migrate import upgrade_to_head
from bot.store.schema import A2A_PUSH_CONFIGS_TABLE, A2A_TASKS_TABLE, schema_info
from bot.store.sent import SentHandoffStore
from bot.store.sqlite import loop_thread_connector
from bot.store.tokens import UsedPeerTokens

__all__ = ["ConsentState", "PendingHandoff", "Store", "StoreError"]


@dataclass
class Store:
    engine: AsyncEngine
    history: HistoryStore
    activities: ActivityLedger
    """The Teams inbox."""
    used_tokens: UsedPeerTokens
    handoffs: HandoffLedgerStore
    consent: ConsentStore
    sent: SentHandoffStore
    a2a_tasks: HandoffTaskStore
    """a2a-sdk's task store over the same database: handoff tasks outlive the process."""
    a2a_push_configs: PushNotificationConfigStore

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        bot_name: str,
        handoff_lease_seconds: float = 120.0,
        turn_lease_seconds: float = 30.0,
        replica_id: str | None = None,
    ) -> Store:
        engine = await open_engine(url)
        return cls(
            engine=engine,
            history=HistoryStore(engine),
            activities=ActivityLedger(
                engine,
                # Unnamed (tools, tests): a replica of its own, whose turns only a lapsed lease frees.
                owner=Owner(replica_id or f"{bot_name}-{uuid.uuid4().hex[:12]}"),
                lease_seconds=turn_lease_seconds,
            ),
            used_tokens=UsedPeerTokens(engine),
            handoffs=HandoffLedgerStore(engine, bot_name=bot_name, lease_seconds=handoff_lease_seconds),
            consent=ConsentStore(engine),
            sent=SentHandoffStore(engine),
            a2a_tasks=HandoffTaskStore(engine, create_table=False, table_name=A2A_TASKS_TABLE),
            a2a_push_configs=HandoffPushConfigStore(
                engine, create_table=False, table_name=A2A_PUSH_CONFIGS_TABLE
            ),
        )

    @property
    def shared(self) -> bool:
        """A database that several processes (replicas) may use at once: PostgreSQL."""
        return self.engine.dialect.name == "postgresql"

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(select(schema_info.c.version))
            return True
        except (SQLAlchemyError, OSError):
            return False


# Alembic keeps its migration context in module globals: one migration at a time per process.
# (Across processes, PostgreSQL's advisory lock in ``upgrade_to_head`` does the same.)
_MIGRATING = asyncio.Lock()


def normalise_url(url: str) -> str:
    """``sqlite:///x.db`` (how most SQLAlchemy users write it) means the async driver here."""
    parsed = make_url(url)
    if parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


async def open_engine(url: str) -> AsyncEngine:
    """An engine whose database is at this release's schema, or ``StoreError`` saying what to fix."""
    try:
        parsed = make_url(normalise_url(url))
    except ArgumentError:
        raise StoreError("STATE_URL: not a database URL (e.g. sqlite:///data/bot.db)") from None
    safe_url = parsed.render_as_string(hide_password=True)
    sqlite = parsed.drivername.startswith("sqlite")
    if sqlite and parsed.database not in (None, "", ":memory:"):
        try:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(
                f"STATE_URL: cannot create the folder for {safe_url}: {error.strerror}"
            ) from None
    # SQLite has one writer at a time: one connection queues writes in order instead of letting
    # several connections spin on the file lock (which dominated latency under load).
    pooling: dict[str, Any] = {"pool_size": 1, "max_overflow": 0} if sqlite else {"pool_pre_ping": True}
    if sqlite:
        # On the loop's thread (``sqlite.py``). Every block of this store ends its transaction
        # (``begin()`` commits or rolls back, ``connect()`` rolls back on close), so the pool's
        # own rollback on every check-in would be a second, empty one.
        pooling |= {
            "async_creator": loop_thread_connector(parsed.database or ":memory:"),
            "pool_reset_on_return": None,
        }
    try:
        # hide_parameters: a failing statement's error (logged) must not carry history or user text.
        engine = create_async_engine(parsed, hide_parameters=True, **pooling)
    except (SQLAlchemyError, ImportError, ValueError) as error:
        raise StoreError(f"STATE_URL: cannot use {safe_url}: {type(error).__name__}") from None
    if sqlite:
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    try:
        async with _MIGRATING, engine.begin() as connection:
            await connection.run_sync(upgrade_to_head)
            # A real write at start: a store that cannot be written fails now, not mid-conversation.
            await connection.execute(update(schema_info).values(started_at=now()))
    except StoreError:
        await engine.dispose()
        raise
    except (SQLAlchemyError, OSError) as error:
        await engine.dispose()
        raise StoreError(f"STATE_URL: cannot open {safe_url}: {reason(error)}") from None
    except Exception as error:  # alembic's own errors, a broken migration: still one clear line
        await engine.dispose()
        raise StoreError(f"STATE_URL: cannot bring {safe_url} up to date: {reason(error)}") from None
    return engine


def _sqlite_pragmas(connection: Any, _: Any) -> None:
    """WAL lets readers work during a write; NORMAL sync is durable across process crashes (the
    case that matters here) at a fraction of FULL's fsyncs; waits for a lock rather than failing."""
    cursor = connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=5000"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()
