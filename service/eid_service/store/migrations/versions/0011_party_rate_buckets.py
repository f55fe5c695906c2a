"""party rate buckets: token buckets per party and per (party, citizen)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24

`token_buckets` holds the relying parties' rate limits as token buckets
shared by every server process (domain/party_limits.py), by keyed digest.
Audit events gain a reason, the call's request id and its trace id, all
nullable: events written before keep their digests (the chain hashes these
fields only when they are set), so `eid-server audit verify` still passes.

Only a table and columns are added, which SQLite does in place.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Audit event columns: name and length.
_AUDIT_COLUMNS = (("reason", 64), ("request_id", 64), ("trace_id", 32))


def upgrade() -> None:
    op.create_table(
        "token_buckets",
        sa.Column("key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("tokens", sa.Double(), nullable=False),
        sa.Column("refilled_at", sa.Double(), nullable=False),
        sa.Column("capacity", sa.Double(), nullable=False),
        sa.Column("per_second", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_token_buckets")),
    )
    op.create_index(
        op.f("ix_token_buckets_refilled_at"), "token_buckets", ["refilled_at"], unique=False
    )
    for name, length in _AUDIT_COLUMNS:
        op.add_column("audit_events", sa.Column(name, sa.String(length=length), nullable=True))


def downgrade() -> None:
    # SQLite drops columns by rebuilding the table; batch mode does that.
    with op.batch_alter_table("audit_events") as batch:
        for name, _ in reversed(_AUDIT_COLUMNS):
            batch.drop_column(name)
    op.drop_index(op.f("ix_token_buckets_refilled_at"), table_name="token_buckets")
    op.drop_table("token_buckets")
