"""verification receipts and party-bound one-time codes

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24

Every successful Verify keeps its signed receipt (and the names of the
attributes released) for the citizen's access history, which is read from
the audit log by account, newest first. One-time codes gain the relying
party they were sent for (Verify by one-time code): a code works only for
the party that asked for it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "verification_receipts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("party_id", sa.String(length=40), nullable=False),
        sa.Column("attributes", sa.String(length=200), nullable=False),
        sa.Column("receipt", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["id"], ["audit_events.id"], name=op.f("fk_verification_receipts_id_audit_events")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_verification_receipts_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["party_id"],
            ["relying_parties.id"],
            name=op.f("fk_verification_receipts_party_id_relying_parties"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verification_receipts")),
    )
    op.create_index(
        "ix_audit_events_account_id_created_at",
        "audit_events",
        ["account_id", "created_at"],
        unique=False,
    )
    with op.batch_alter_table("activation_codes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("party_id", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("activation_codes", schema=None) as batch_op:
        batch_op.drop_column("party_id")
    op.drop_index("ix_audit_events_account_id_created_at", table_name="audit_events")
    op.drop_table("verification_receipts")
