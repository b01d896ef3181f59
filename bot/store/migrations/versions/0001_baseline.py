"""The schema of the last release before migrations (schema_info version 1), created where missing.

A database written by that release already has these tables: each is created only if absent, so
such a database passes through unchanged and continues with the next revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    tables = sa.MetaData()
    sa.Table(
        "schema_info",
        tables,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    )
    sa.Table(
        "history_messages",
        tables,
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("conversation_id", sa.String(255), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Index("ix_history_conversation", "conversation_id", "id"),
    )
    sa.Table(
        "conversation_refs",
        tables,
        sa.Column("conversation_id", sa.String(255), primary_key=True),
        sa.Column("service_url", sa.String(500), nullable=False),
        sa.Column("tenant_id", sa.String(100), nullable=False),
        sa.Column("aad_object_id", sa.String(100), nullable=False),
        sa.Column("user_name", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    sa.Table(
        "handoffs",
        tables,
        sa.Column("handoff_id", sa.String(100), primary_key=True),
        sa.Column("from_bot", sa.String(100), nullable=False),
        sa.Column("to_bot", sa.String(100), nullable=False),
        sa.Column("aad_object_id", sa.String(100), nullable=False),
        sa.Column("tenant_id", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("outcome", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    sa.Table(
        "conversation_consent",
        tables,
        sa.Column("conversation_id", sa.String(255), primary_key=True),
        sa.Column("choice", sa.String(10), nullable=True),
        sa.Column("pending", sa.Text, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    sa.Table(
        "processed_activities",
        tables,
        sa.Column("activity_id", sa.String(255), primary_key=True),
        sa.Column("conversation_id", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    tables.create_all(bind, checkfirst=True)
    info = tables.tables["schema_info"]
    if bind.execute(sa.select(info.c.version)).scalar() is None:
        bind.execute(info.insert().values(id=1, version=1))


def downgrade() -> None:
    raise NotImplementedError("downgrades are not supported: restore a backup")
