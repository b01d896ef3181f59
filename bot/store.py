"""Everything the bot must remember across restarts, behind one small interface.

Conversation history (per Teams conversation), conversation references (where to reach a user)
and the handoff ledger live in one SQL database chosen by ``STATE_URL``: SQLite by default, any
SQLAlchemy async URL (PostgreSQL via asyncpg) for several replicas. The schema is created on start
and carries a version number so later releases can migrate it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from a2a_bridge.executor import HandoffLedger
from a2a_bridge.handoff import HandoffMessage, HandoffOutcome

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1

metadata = MetaData()

schema_info = Table(
    "schema_info",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)
histories = Table(
    "histories",
    metadata,
    Column("conversation_id", String(255), primary_key=True),
    Column("messages", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
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
    Column("outcome", Text, nullable=False),
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


class Store(HandoffLedger):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @classmethod
    async def open(cls, url: str) -> Store:
        safe_url = make_url(url).render_as_string(hide_password=True)
        database = make_url(url).database
        if url.startswith("sqlite") and database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url)
        store = cls(engine)
        try:
            await store._create_schema()
        except (SQLAlchemyError, OSError) as error:
            await engine.dispose()
            raise StoreError(f"STATE_URL: cannot open {safe_url}: {type(error).__name__}") from None
        return store

    async def close(self) -> None:
        await self._engine.dispose()

    async def ping(self) -> bool:
        try:
            async with self._engine.connect() as connection:
                await connection.execute(select(1))
            return True
        except SQLAlchemyError:
            return False

    async def _create_schema(self) -> None:
        async with self._engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
            version = (await connection.execute(select(schema_info.c.version))).scalar()
            if version is None:
                await connection.execute(schema_info.insert().values(id=1, version=SCHEMA_VERSION))
            elif version > SCHEMA_VERSION:
                raise StoreError(
                    f"STATE_URL: the database has schema version {version}, newer than this release "
                    f"({SCHEMA_VERSION})"
                )

    # History -----------------------------------------------------------------------------------

    async def load_history(self, conversation_id: str) -> list[dict[str, Any]]:
        async with self._engine.connect() as connection:
            raw = (
                await connection.execute(
                    select(histories.c.messages).where(histories.c.conversation_id == conversation_id)
                )
            ).scalar()
        return list(json.loads(raw)) if raw else []

    async def append_history(self, conversation_id: str, messages: list[dict[str, Any]]) -> None:
        if not messages:
            return
        async with self._engine.begin() as connection:
            raw = (
                await connection.execute(
                    select(histories.c.messages).where(histories.c.conversation_id == conversation_id)
                )
            ).scalar()
            now = datetime.now(UTC)
            if raw is None:
                await connection.execute(
                    histories.insert().values(
                        conversation_id=conversation_id, messages=json.dumps(messages), updated_at=now
                    )
                )
            else:
                await connection.execute(
                    histories.update()
                    .where(histories.c.conversation_id == conversation_id)
                    .values(messages=json.dumps([*json.loads(raw), *messages]), updated_at=now)
                )

    # Conversation references --------------------------------------------------------------------

    async def save_conversation_ref(self, ref: ConversationRef) -> None:
        values = {
            "service_url": ref.service_url,
            "tenant_id": ref.tenant_id,
            "aad_object_id": ref.aad_object_id,
            "user_name": ref.user_name,
            "updated_at": datetime.now(UTC),
        }
        async with self._engine.begin() as connection:
            updated = await connection.execute(
                conversation_refs.update()
                .where(conversation_refs.c.conversation_id == ref.conversation_id)
                .values(**values)
            )
            if updated.rowcount == 0:
                await connection.execute(
                    conversation_refs.insert().values(conversation_id=ref.conversation_id, **values)
                )

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

    # Handoff ledger -----------------------------------------------------------------------------

    async def find_outcome(self, handoff_id: str) -> HandoffOutcome | None:
        async with self._engine.connect() as connection:
            raw = (
                await connection.execute(
                    select(handoffs.c.outcome).where(handoffs.c.handoff_id == handoff_id)
                )
            ).scalar()
        return HandoffOutcome.model_validate_json(raw) if raw else None

    async def handoff_outcomes(self, limit: int = 100) -> list[HandoffOutcome]:
        """The most recent handoffs received, newest first."""
        async with self._engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(handoffs.c.outcome).order_by(handoffs.c.created_at.desc()).limit(limit)
                )
            ).scalars()
            return [HandoffOutcome.model_validate_json(raw) for raw in rows]

    async def record_outcome(self, handoff: HandoffMessage, outcome: HandoffOutcome) -> None:
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    handoffs.insert().values(
                        handoff_id=handoff.handoff_id,
                        from_bot=handoff.from_,
                        to_bot=outcome.peer,
                        aad_object_id=handoff.aad_object_id,
                        tenant_id=handoff.tenant_id,
                        status=outcome.status.value,
                        outcome=outcome.model_dump_json(by_alias=True),
                        created_at=datetime.now(UTC),
                    )
                )
        except IntegrityError:
            logger.info(
                "handoff_already_recorded",
                extra={"event": "handoff_already_recorded", "handoff_id": handoff.handoff_id},
            )
