"""Drop ``conversation_refs``: written on every new conversation, never read by the bot.

Also marks ``schema_info`` with version 2, which releases from before migrations refuse.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("conversation_refs")
    op.execute(sa.text("UPDATE schema_info SET version = 2"))


def downgrade() -> None:
    raise NotImplementedError("downgrades are not supported: restore a backup")
