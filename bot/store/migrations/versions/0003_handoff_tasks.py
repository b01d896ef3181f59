"""Handoffs as A2A tasks: what a replica needs to take over a received handoff, the handoffs this
bot sent and is waiting on, and a2a-sdk's task and push-configuration tables."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.store.schema import a2a_push_configs, a2a_tasks

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("handoffs") as batch:
        batch.add_column(sa.Column("caller", sa.String(100), nullable=True))
        batch.add_column(sa.Column("payload", sa.Text, nullable=True))
        batch.add_column(sa.Column("task_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("context_id", sa.String(36), nullable=True))
    # sent_handoffs as it was at this revision (later revisions add to it): a migration must not
    # change when schema.py does.
    op.create_table(
        "sent_handoffs",
        sa.Column("handoff_id", sa.String(100), primary_key=True),
        sa.Column("peer", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("push_token_sha256", sa.String(64), nullable=False),
        sa.Column("conversation_id", sa.String(255), nullable=False),
        sa.Column("service_url", sa.String(2048), nullable=False),
        sa.Column("notice_activity_id", sa.String(255), nullable=True),
        sa.Column("task_id", sa.String(255), nullable=True),
        sa.Column("outcome", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_sent_handoffs_status", "sent_handoffs", ["status"])
    # a2a-sdk's own tables, from its models: new tables, so nothing to carry over.
    bind = op.get_bind()
    for table in (a2a_tasks, a2a_push_configs):
        table.create(bind)


def downgrade() -> None:
    raise NotImplementedError("downgrades are not supported: restore a backup")
