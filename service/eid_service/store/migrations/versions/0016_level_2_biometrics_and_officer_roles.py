"""level 2: account biometrics enrolled at the counter, officer roles

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-25

`account_biometrics` keeps the portrait and fingerprint templates a
registration officer captured when registering or upgrading a level-2
account (one sealed blob per account, with the key id it was sealed with,
for `rotate-keys`), for biometric Verify to compare with.

Officers gain roles: `registration` (level 2) and `unlock`. Officers made
before roles existed could only unlock, so they keep exactly that
(server default "unlock"); an operator grants more with
`eid-server officer set-roles`. The column is added in place (SQLite too).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from eid_service.store.models import UTCDateTime

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "account_biometrics",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("templates_enc", sa.LargeBinary(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("enrolled_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_account_biometrics_account_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_account_biometrics")),
    )
    op.add_column(
        "officers",
        sa.Column("roles", sa.String(length=64), server_default="unlock", nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("officers") as batch:
        batch.drop_column("roles")
    op.drop_table("account_biometrics")
