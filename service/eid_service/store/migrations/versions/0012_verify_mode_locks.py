"""verify mode locks and deceased registry records

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-24

Citizens lock single Verify modes (one-time code, password, approval,
demographic) for themselves: one row per locked mode, with the end of a
temporary unlock. The population registry records a date of death
(encrypted like the other fields); an account whose citizen died becomes
DEACTIVATED, with the time.

Only a table and nullable columns are added, which SQLite does in place:
accounts and registry_citizens are not rebuilt.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from eid_service.store.models import UTCDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "verify_mode_locks",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("locked_at", UTCDateTime(), nullable=False),
        sa.Column("unlocked_until", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_verify_mode_locks_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", "mode", name=op.f("pk_verify_mode_locks")),
    )
    op.add_column("registry_citizens", sa.Column("death_date_enc", sa.LargeBinary(), nullable=True))
    op.add_column("accounts", sa.Column("deactivated_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("deactivated_at")
    with op.batch_alter_table("registry_citizens", schema=None) as batch_op:
        batch_op.drop_column("death_date_enc")
    op.drop_table("verify_mode_locks")
