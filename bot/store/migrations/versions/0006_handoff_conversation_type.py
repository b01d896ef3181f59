"""Where a sent handoff's notice lives: a personal chat (a card with what was passed on) or a group
chat or channel (one line, no private details)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sent_handoffs") as batch:
        # Rows from before were all sent from personal chats (the only scope the bots had).
        batch.add_column(
            sa.Column("conversation_type", sa.String(20), nullable=False, server_default="personal")
        )


def downgrade() -> None:
    raise NotImplementedError("downgrades are not supported: restore a backup")
