"""The Teams inbox and shared peer-token replay memory.

``processed_activities`` only said "seen": an activity accepted and then lost with its process was
never answered, and Teams' redelivery was dropped as a duplicate. It now keeps each accepted turn
until it ends, under a lease. Peer-token ids are remembered in the database so that a token used at
one replica is refused at another.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Written out here, not imported from schema.py: a migration must not change when the schema does.
    with op.batch_alter_table("processed_activities") as batch:
        # Rows from before were answered (or lost) by an earlier release: nothing to resume.
        batch.add_column(sa.Column("status", sa.String(20), nullable=False, server_default="done"))
        batch.add_column(sa.Column("turn", sa.Text, nullable=True))
        batch.add_column(sa.Column("owner_replica", sa.String(255), nullable=True))
        batch.add_column(sa.Column("owner_run", sa.String(36), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer, nullable=False, server_default="0"))
        batch.create_index("ix_processed_activities_pending", ["status", "lease_until"])
    op.create_table(
        "used_peer_tokens",
        sa.Column("jti", sa.String(255), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_used_peer_tokens_expires_at", "used_peer_tokens", ["expires_at"])


def downgrade() -> None:
    raise NotImplementedError("downgrades are not supported: restore a backup")
