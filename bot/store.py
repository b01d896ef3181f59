"""Everything the bot must remember across restarts, behind one small interface.

Conversation history (per Teams conversation), conversation references (where to reach a user),
the handoff ledger and the ids of activities already answered live in one SQL database chosen by
``STATE_URL``: SQLite by default, PostgreSQL (``postgresql+asyncpg://...``) for several replicas
of one bot. Both run the same code through SQLAlchemy's async engine. The schema is created on
start and carries a version number so later releases can migrate it.

Every write that must happen once (an activity answered, a handoff carried out) is a claim: an
INSERT that only one caller, in any replica, can win.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    event,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from a2a_bridge.handoff import HandoffMessage, HandoffOutcome, HandoffStatus

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
REF_CACHE_SECONDS = 600.0
REF_CACHE_SIZE = 10_000
PENDING = "pending"

metadata = MetaData()

schema_info = Table(
    "schema_info",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
)
history_messages = Table(
    "history_messages",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("conversation_id", String(255), nullable=False),
    Column("message", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_history_conversation", "conversation_id", "id"),
)
conversation_refs = Table(
    "conversation_refs",
    metadata,
    Column("conversation_id", String(255), primary_key=True),
    Column("service_url", String(500), nullable=False),
    Column("tenant_id", String(100), nullable=False),
    Column("aad_object_id", String(100), nullable=False),
    Column("user_name", String(200), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
handoffs = Table(
    "handoffs",
    metadata,
    Column("handoff_id", String(100), primary_key=True),
    Column("from_bot", String(100), nullable=False),
    Column("to_bot", String(100), nullable=False),
    Column("aad_object_id", String(100), nullable=False),
    Column("tenant_id", String(100), nullable=False),
    Column("status", String(20), nullable=False),
    Column("outcome", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
conversation_consent = Table(
    "conversation_consent",
    metadata,
    Column("conversation_id", String(255), primary_key=True),
    Column("choice", String(10), nullable=True),
    Column("pending", Text, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
processed_activities = Table(
    "processed_activities",
    metadata,
    Column("activity_id", String(255), primary_key=True),
    Column("conversation_id", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


class StoreError(Exception):
    """The store cannot be opened or used; the message says what to fix, without the URL's password."""


@dataclass(frozen=True)
class ConversationRef:
    conversation_id: str
    service_url: str
    tenant_id: str
    aad_object_id: str
    user_name: str


def _now() -> datetime:
    return datetime.now(UTC)


class Store:
    def __init__(self, engine: AsyncEngine, *, bot_name: str, handoff_lease: float = 120.0) -> None:
        self._engine = engine
        self._bot_name = bot_name
        self._handoff_lease = handoff_lease
        self._refs: OrderedDict[str, tuple[ConversationRef, float]] = OrderedDict()

    @classmethod
    async def open(cls, url: str, *, bot_name: str) -> Store:
        parsed = make_url(url)
        safe_url = parsed.render_as_string(hide_password=True)
        if parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:"):
            try:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StoreError(
                    f"STATE_URL: cannot create the folder for {safe_url}: {error.strerror}"
                ) from None
        sqlite = parsed.drivername.startswith("sqlite")
        # SQLite has one writer at a time: one connection queues writes in order instead of letting
        # several connections spin on the file lock (which dominated latency under load).
        pooling = {"pool_size": 1, "max_overflow": 0} if sqlite else {"pool_pre_ping": True}
        try:
            engine = create_async_engine(url, **pooling)
        except (SQLAlchemyError, ImportError, ValueError) as error:
            raise StoreError(f"STATE_URL: cannot use {safe_url}: {type(error).__name__}") from None
        if sqlite:
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        store = cls(engine, bot_name=bot_name)
        try:
            await store._create_schema()
        except StoreError:
            await engine.dispose()
            raise
        except (SQLAlchemyError, OSError) as error:
            await engine.dispose()
            raise StoreError(f"STATE_URL: cannot open {safe_url}: {_reason(error)}") from None
        return store

    async def close(self) -> None:
        await self._engine.dispose()

    async def ping(self) -> bool:
        try:
            async with self._engine.connect() as connection:
                await connection.execute(select(schema_info.c.version))
            return True
        except (SQLAlchemyError, OSError):
            return False

    async def _create_schema(self) -> None:
        async with self._engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
            version = (await connection.execute(select(schema_info.c.version))).scalar()
            if version is None:
                await connection.execute(
                    schema_info.insert().values(id=1, version=SCHEMA_VERSION, started_at=_now())
                )
            elif version > SCHEMA_VERSION:
                raise StoreError(
                    f"STATE_URL: the database has schema version {version}, newer than this release "
                    f"({SCHEMA_VERSION}); run the newer release or restore a backup"
                )
            else:
                # A real write at start: a store that cannot be written fails now, not mid-conversation.
                await connection.execute(schema_info.update().values(started_at=_now()))

    # History -----------------------------------------------------------------------------------

    async def load_history(self, conversation_id: str) -> list[dict[str, Any]]:
        async with self._engine.connect() as connection:
            rows = await connection.execute(
                select(history_messages.c.message)
                .where(history_messages.c.conversation_id == conversation_id)
                .order_by(history_messages.c.id)
            )
            return [json.loads(raw) for raw in rows.scalars()]

    async def append_history(self, conversation_id: str, messages: list[dict[str, Any]]) -> None:
        if not messages:
            return
        now = _now()
        async with self._engine.begin() as connection:
            await connection.execute(
                history_messages.insert(),
                [
                    {"conversation_id": conversation_id, "message": json.dumps(m), "created_at": now}
                    for m in messages
                ],
            )

    # Conversation references --------------------------------------------------------------------

    async def save_conversation_ref(self, ref: ConversationRef) -> None:
        if self._ref_known(ref):
            return
        async with self._engine.begin() as connection:
            await self._upsert_ref(connection, ref)
        self._remember_ref(ref)

    async def _upsert_ref(self, connection: AsyncConnection, ref: ConversationRef) -> None:
        values = {
            "service_url": ref.service_url,
            "tenant_id": ref.tenant_id,
            "aad_object_id": ref.aad_object_id,
            "user_name": ref.user_name,
            "updated_at": _now(),
        }
        updated = await connection.execute(
            conversation_refs.update()
            .where(conversation_refs.c.conversation_id == ref.conversation_id)
            .values(**values)
        )
        if updated.rowcount == 0:
            try:
                async with connection.begin_nested():
                    await connection.execute(
                        conversation_refs.insert().values(conversation_id=ref.conversation_id, **values)
                    )
            except IntegrityError:
                pass  # another replica saved it at the same moment; either copy is right

    def _ref_known(self, ref: ConversationRef) -> bool:
        """A user's reference rarely changes; re-writing it on every message was a third of the
        store's work. An entry is trusted for ``REF_CACHE_SECONDS`` so other replicas' writes win soon."""
        known = self._refs.get(ref.conversation_id)
        return known is not None and known[0] == ref and time.monotonic() - known[1] < REF_CACHE_SECONDS

    def _remember_ref(self, ref: ConversationRef) -> None:
        self._refs[ref.conversation_id] = (ref, time.monotonic())
        self._refs.move_to_end(ref.conversation_id)
        while len(self._refs) > REF_CACHE_SIZE:
            self._refs.popitem(last=False)

    async def find_conversation_ref(self, conversation_id: str) -> ConversationRef | None:
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(
                    select(conversation_refs).where(conversation_refs.c.conversation_id == conversation_id)
                )
            ).first()
        if row is None:
            return None
        return ConversationRef(
            conversation_id=row.conversation_id,
            service_url=row.service_url,
            tenant_id=row.tenant_id,
            aad_object_id=row.aad_object_id,
            user_name=row.user_name,
        )

    # Handoff consent (HANDOFF_CONSENT=ask) ----------------------------------------------------

    async def consent(self, conversation_id: str) -> tuple[str | None, dict[str, Any] | None]:
        """The user's remembered choice ("yes"/"no"/None) and the handoff waiting for it, if any."""
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(
                    select(conversation_consent.c.choice, conversation_consent.c.pending).where(
                        conversation_consent.c.conversation_id == conversation_id
                    )
                )
            ).first()
        if row is None:
            return None, None
        return row.choice, json.loads(row.pending) if row.pending else None

    async def set_pending_handoff(self, conversation_id: str, pending: dict[str, Any]) -> None:
        await self._upsert_consent(conversation_id, pending=json.dumps(pending))

    async def set_consent(self, conversation_id: str, choice: str) -> None:
        await self._upsert_consent(conversation_id, choice=choice, pending=None)

    async def _upsert_consent(self, conversation_id: str, **values: Any) -> None:
        values["updated_at"] = _now()
        async with self._engine.begin() as connection:
            updated = await connection.execute(
                conversation_consent.update()
                .where(conversation_consent.c.conversation_id == conversation_id)
                .values(**values)
            )
            if updated.rowcount == 0:
                await connection.execute(
                    conversation_consent.insert().values(conversation_id=conversation_id, **values)
                )

    # Activities answered ------------------------------------------------------------------------

    async def claim_activity(self, activity_id: str, conversation_id: str) -> bool:
        """True for the first delivery of an activity id; False for a redelivery."""
        return await self.accept_activity(activity_id, conversation_id, None)

    async def accept_activity(
        self, activity_id: str, conversation_id: str, ref: ConversationRef | None
    ) -> bool:
        """Claim an activity and remember where its user is, in one transaction.

        False for a redelivery of an activity already accepted (nothing is written then)."""
        write_ref = ref is not None and not self._ref_known(ref)
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    processed_activities.insert().values(
                        activity_id=activity_id[:255],
                        conversation_id=conversation_id[:255],
                        created_at=_now(),
                    )
                )
                if write_ref and ref is not None:
                    await self._upsert_ref(connection, ref)
        except IntegrityError:
            return False
        if write_ref and ref is not None:
            self._remember_ref(ref)
        return True

    # Handoff ledger (a2a_bridge.executor.HandoffLedger) -----------------------------------------

    async def claim(self, handoff: HandoffMessage, *, wait: float = 60.0) -> HandoffOutcome | None:
        """None when this caller now owns the handoff; else the outcome of whoever carried it out.

        A handoff still pending in another request (here or in another replica) is waited for; one
        pending for longer than the lease (its owner died) is taken over.
        """
        deadline = time.monotonic() + wait
        while True:
            now = _now()
            try:
                async with self._engine.begin() as connection:
                    await connection.execute(
                        handoffs.insert().values(
                            handoff_id=handoff.handoff_id,
                            from_bot=handoff.from_,
                            to_bot=self._bot_name,
                            aad_object_id=handoff.aad_object_id,
                            tenant_id=handoff.tenant_id,
                            status=PENDING,
                            outcome=None,
                            created_at=now,
                            updated_at=now,
                        )
                    )
                return None
            except IntegrityError:
                pass
            async with self._engine.begin() as connection:
                row = (
                    await connection.execute(
                        select(handoffs.c.status, handoffs.c.outcome, handoffs.c.updated_at).where(
                            handoffs.c.handoff_id == handoff.handoff_id
                        )
                    )
                ).first()
                if row is not None and row.status != PENDING:
                    return HandoffOutcome.model_validate_json(row.outcome)
                if row is not None and _aware(row.updated_at) < now - timedelta(seconds=self._handoff_lease):
                    taken = await connection.execute(
                        handoffs.update()
                        .where(
                            handoffs.c.handoff_id == handoff.handoff_id,
                            handoffs.c.status == PENDING,
                            handoffs.c.updated_at == row.updated_at,
                        )
                        .values(updated_at=now)
                    )
                    if taken.rowcount == 1:
                        logger.warning(
                            "handoff_lease_taken_over",
                            extra={"event": "handoff_lease_taken_over", "handoff_id": handoff.handoff_id},
                        )
                        return None
            if time.monotonic() > deadline:
                return HandoffOutcome(
                    handoff_id=handoff.handoff_id,
                    status=HandoffStatus.FAILED,
                    peer=self._bot_name,
                    reason=f"{self._bot_name} is still working on this handoff; please wait a moment.",
                )
            await asyncio.sleep(0.1)  # another request owns it: poll for its outcome

    async def record_outcome(self, handoff: HandoffMessage, outcome: HandoffOutcome) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                handoffs.update()
                .where(handoffs.c.handoff_id == handoff.handoff_id)
                .values(
                    status=outcome.status.value,
                    outcome=outcome.model_dump_json(by_alias=True),
                    updated_at=_now(),
                )
            )

    async def handoff_outcomes(self, limit: int = 100) -> list[HandoffOutcome]:
        """The most recent handoffs received and finished, newest first."""
        async with self._engine.connect() as connection:
            rows = await connection.execute(
                select(handoffs.c.outcome)
                .where(handoffs.c.status != PENDING)
                .order_by(handoffs.c.created_at.desc())
                .limit(limit)
            )
            return [HandoffOutcome.model_validate_json(raw) for raw in rows.scalars()]


def _sqlite_pragmas(connection: Any, _: Any) -> None:
    """WAL lets readers work during a write; NORMAL sync is durable across process crashes (the
    case that matters here) at a fraction of FULL's fsyncs; waits for a lock rather than failing."""
    cursor = connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=5000"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _aware(moment: datetime) -> datetime:
    """SQLite hands timezone-aware columns back naive; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _reason(error: BaseException) -> str:
    """The driver's own words (e.g. 'attempt to write a readonly database'), never the URL."""
    original = getattr(error, "orig", None) or error
    text = str(original).splitlines()[0] if str(original) else type(original).__name__
    return text[:200]
