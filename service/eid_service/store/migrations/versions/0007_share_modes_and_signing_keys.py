"""share modes and signing keys: offline and multi-use shares, redemption counts, rotatable keys

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24

Shares gain a mode (online reference or offline credential), a multi-use
flag, a redemption count and the last redemption time. Share-signing keys
move from the key ring file to the database (private halves encrypted), so
that every worker sees a rotation or a revocation; the service copies the
ring's signing keys into the table, retired, when it first starts.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from eid_service.store.models import UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("private_key_enc", sa.LargeBinary(), nullable=False),
        sa.Column("is_current", sa.Boolean(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("retired_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_signing_keys")),
        sa.UniqueConstraint("is_current", name=op.f("uq_signing_keys_is_current")),
    )
    with op.batch_alter_table("shares", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("mode", sa.String(length=8), server_default="online", nullable=False)
        )
        batch_op.add_column(
            sa.Column("multi_use", sa.Boolean(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("redeem_count", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("last_redeemed_at", UTCDateTime(), nullable=True))
    # Shares redeemed before this migration count once.
    op.execute("UPDATE shares SET redeem_count = 1 WHERE redeemed_at IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("shares", schema=None) as batch_op:
        batch_op.drop_column("last_redeemed_at")
        batch_op.drop_column("redeem_count")
        batch_op.drop_column("multi_use")
        batch_op.drop_column("mode")
    op.drop_table("signing_keys")
