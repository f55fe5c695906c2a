"""status webhooks: parties subscribe to status changes of citizens they verified

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-24

A relying party may have one webhook URL (sealed, as it may carry the
party's own token), to which the service POSTs signed events when a citizen
the party verified is locked, unlocked or deactivated. Who verified whom is
read from verification_receipts, which gains an index by account.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from eid_service.store.models import UTCDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "party_webhooks",
        sa.Column("party_id", sa.String(length=40), nullable=False),
        sa.Column("url_enc", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["party_id"],
            ["relying_parties.id"],
            name=op.f("fk_party_webhooks_party_id_relying_parties"),
        ),
        sa.PrimaryKeyConstraint("party_id", name=op.f("pk_party_webhooks")),
    )
    op.create_index(
        "ix_verification_receipts_account_id_party_id",
        "verification_receipts",
        ["account_id", "party_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        "ix_verification_receipts_account_id_party_id", table_name="verification_receipts"
    )
    op.drop_table("party_webhooks")
