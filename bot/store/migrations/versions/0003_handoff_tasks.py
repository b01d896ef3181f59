"""Handoffs as A2A tasks: what a replica needs to take over a received handoff, the handoffs this
bot sent and is waiting on, and a2a-sdk's task and push-configuration tables."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.store.schema import a2a_push_configs, a2a_tasks, sent_handoffs

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
    bind = op.get_bind()
    # Created from this release's definitions: new tables, so nothing to carry over.
    for table in (sent_handoffs, a2a_tasks, a2a_push_configs):
        table.create(bind)


def downgrade() -> None:
    raise NotImplementedError("downgrades are not supported: restore a backup")
