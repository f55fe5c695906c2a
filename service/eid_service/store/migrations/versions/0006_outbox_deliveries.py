"""outbox deliveries: one row per (message, sender) with its own state

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25

A message used to be claimed once for all its senders, so one failing sender
made every other one send again. Each sender's delivery now has its own
state (pending, sent, dead), attempts, next attempt time (backoff, and the
claim) and last error class. The message's claim and attempt count move
there; `routed_at` says when its deliveries were made. Unsent messages are
routed by the dispatcher after the upgrade.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from eid_service.store.models import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox_deliveries",
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column("sender", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("last_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=120), nullable=True),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"], ["outbox.id"], name=op.f("fk_outbox_deliveries_message_id_outbox")
        ),
        sa.PrimaryKeyConstraint("message_id", "sender", name=op.f("pk_outbox_deliveries")),
    )
    op.create_index(
        op.f("ix_outbox_deliveries_due"),
        "outbox_deliveries",
        ["state", "next_attempt_at"],
        unique=False,
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("routed_at", UTCDateTime(), nullable=True))
        batch_op.drop_column("claimed_until")
        batch_op.drop_column("attempts")


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_column("routed_at")
    op.drop_index(op.f("ix_outbox_deliveries_due"), table_name="outbox_deliveries")
    op.drop_table("outbox_deliveries")
