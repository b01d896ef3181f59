"""The tables as this release uses them. Their history, and how a database gets here, is in
``migrations/``: change both together (a new revision there for every change here)."""

from __future__ import annotations

from typing import cast

from a2a.server.models import create_push_notification_config_model, create_task_model
from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, MetaData, String, Table, Text, inspect
from sqlalchemy.orm import DeclarativeBase

# The revision a database must be at for this release; ``migrations/versions`` ends here.
HEAD_REVISION = "0006"
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
    # Since 0004 keyed by the caller too: handoff ids are chosen by senders, who may repeat another's.
    Column("handoff_id", String(100), primary_key=True),
    Column("caller", String(100), primary_key=True),
    Column("from_bot", String(100), nullable=False),
    Column("to_bot", String(100), nullable=False),
    Column("aad_object_id", String(100), nullable=False),
    Column("tenant_id", String(100), nullable=False),
    Column("status", String(20), nullable=False),
    Column("outcome", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Since 0003: what a replica needs to take over a handoff whose owner died.
    Column("payload", Text, nullable=True),
    Column("task_id", String(36), nullable=True),
    Column("context_id", String(36), nullable=True),
    # Since 0004: where the caller asked to be told of the end (a2a_bridge.push.PushTarget as JSON).
    Column("push_target", Text, nullable=True),
)
sent_handoffs = Table(
    "sent_handoffs",
    metadata,
    Column("handoff_id", String(100), primary_key=True),
    Column("peer", String(100), nullable=False),
    Column("status", String(20), nullable=False),
    Column("payload", Text, nullable=False),
    Column("push_token_sha256", String(64), nullable=False),
    Column("conversation_id", String(255), nullable=False),
    Column("service_url", String(2048), nullable=False),
    # Since 0006: personal, groupChat or channel (how the notice is written).
    Column("conversation_type", String(20), nullable=False, server_default="personal"),
    Column("notice_activity_id", String(255), nullable=True),
    Column("task_id", String(255), nullable=True),
    Column("outcome", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_sent_handoffs_status", "status"),
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
    # Since 0005 the Teams inbox: a turn accepted and not yet ended is ``pending`` with what it needs
    # to run (``turn``, a bot.inbox.PendingTurn as JSON), held by one process under a lease.
    Column("status", String(20), nullable=False, server_default="done"),
    Column("turn", Text, nullable=True),
    Column("owner_replica", String(255), nullable=True),
    Column("owner_run", String(36), nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Index("ix_processed_activities_pending", "status", "lease_until"),
)
used_peer_tokens = Table(
    "used_peer_tokens",
    metadata,
    # Since 0005: the ids of peer tokens already used, until they expire, shared by every replica.
    Column("jti", String(255), primary_key=True),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_used_peer_tokens_expires_at", "expires_at"),
)


class _A2ATables(DeclarativeBase):
    metadata = metadata


# a2a-sdk's task and push-configuration tables, as its DatabaseTaskStore and
# DatabasePushNotificationConfigStore read them, created and migrated with ours. They keep the SDK's
# default names: for any other name its stores build a new mapped class, once per store instance.
A2A_TASKS_TABLE = "tasks"
A2A_PUSH_CONFIGS_TABLE = "push_notification_configs"
a2a_tasks = cast(Table, inspect(create_task_model(A2A_TASKS_TABLE, _A2ATables)).local_table)
a2a_push_configs = cast(
    Table, inspect(create_push_notification_config_model(A2A_PUSH_CONFIGS_TABLE, _A2ATables)).local_table
)
