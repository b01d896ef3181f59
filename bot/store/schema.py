"""The tables as this release uses them. Their history, and how a database gets here, is in
``migrations/``: change both together (a new revision there for every change here)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, MetaData, String, Table, Text

# The revision a database must be at for this release; ``migrations/versions`` ends here.
HEAD_REVISION = "0002"
# Written into the old ``schema_info`` table too, so a release from before migrations refuses a
# database this one has upgraded (it reads that number) instead of writing to it blindly.
LEGACY_SCHEMA_VERSION = 2

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
