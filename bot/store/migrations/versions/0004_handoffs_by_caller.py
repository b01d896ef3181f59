"""Received handoffs keyed by (caller, handoff id), and the push target kept with each claim.

A handoff id is chosen by the sender, so two peers may pick the same one: keyed by the id alone,
the second peer's handoff was answered with the first one's outcome. The push target the caller
named travels with the claim, so the job (or a replica taking it over) needs no other read.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_COLUMNS = (
    "handoff_id, from_bot, to_bot, aad_object_id, tenant_id, status, outcome, created_at, updated_at, "
    "caller, payload, task_id, context_id"
)


def upgrade() -> None:
    # Written out here, not imported from schema.py: a migration must not change when the schema does.
    op.create_table(
        "handoffs_0004",
        sa.Column("handoff_id", sa.String(100), primary_key=True),
        sa.Column("caller", sa.String(100), primary_key=True),
        sa.Column("from_bot", sa.String(100), nullable=False),
        sa.Column("to_bot", sa.String(100), nullable=False),
        sa.Column("aad_object_id", sa.String(100), nullable=False),
        sa.Column("tenant_id", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("outcome", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.Text, nullable=True),
        sa.Column("task_id", sa.String(36), nullable=True),
        sa.Column("context_id", sa.String(36), nullable=True),
        sa.Column("push_target", sa.Text, nullable=True),
    )
    # Before 0003 the caller was not kept; outside local development a peer was authenticated as its
    # handoff's ``from``, so that is who the caller was.
    selected = _COLUMNS.replace("caller", "COALESCE(caller, from_bot)")
    op.execute(sa.text(f"INSERT INTO handoffs_0004 ({_COLUMNS}) SELECT {selected} FROM handoffs"))
    op.drop_table("handoffs")
    op.rename_table("handoffs_0004", "handoffs")


def downgrade() -> None:
    raise NotImplementedError("downgrades are not supported: restore a backup")
