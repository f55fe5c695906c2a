"""dependants: children's accounts under a guardian's, and shares a guardian made

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-25

A child under 14 is registered under a guardian's account (state
"dependant"): `accounts` gains the guardian's account id, a keyed index of
the day the child turns 14 (equality look-ups by day; no date in clear),
when the guardian was told of it and when the child took the account over.
`shares` gains the guardian's account id for a share a guardian made for a
dependant (indexed: locking the guardian's account ends those shares). No
foreign keys and only nullable columns, so SQLite adds them in place
(account ids are never deleted).

Written on a branch beside 0016: re-chain down_revision after it on merge.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from eid_service.store.models import UTCDateTime

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("guardian_account_id", sa.String(length=40), nullable=True))
    op.add_column(
        "accounts", sa.Column("take_over_index", sa.LargeBinary(length=32), nullable=True)
    )
    op.add_column("accounts", sa.Column("of_age_notified_at", UTCDateTime(), nullable=True))
    op.add_column("accounts", sa.Column("taken_over_at", UTCDateTime(), nullable=True))
    op.create_index(
        op.f("ix_accounts_guardian_account_id"), "accounts", ["guardian_account_id"], unique=False
    )
    op.create_index(
        op.f("ix_accounts_take_over_index"), "accounts", ["take_over_index"], unique=False
    )
    op.add_column("shares", sa.Column("issued_by", sa.String(length=40), nullable=True))
    op.create_index(op.f("ix_shares_issued_by"), "shares", ["issued_by"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_shares_issued_by"), table_name="shares")
    with op.batch_alter_table("shares", schema=None) as batch_op:
        batch_op.drop_column("issued_by")
    op.drop_index(op.f("ix_accounts_take_over_index"), table_name="accounts")
    op.drop_index(op.f("ix_accounts_guardian_account_id"), table_name="accounts")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("taken_over_at")
        batch_op.drop_column("of_age_notified_at")
        batch_op.drop_column("take_over_index")
        batch_op.drop_column("guardian_account_id")
