"""approval requests: a party asks, the citizen approves on their device

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24

Verify by the citizen's approval on their signed-in device: a relying party
starts a request (for an ID number, or for whoever scans its QR code), the
citizen approves or declines it in the app, and the party's Verify collects
the outcome once. A new table; nothing else changes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from eid_service.store.models import UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "approval_requests",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("party_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=True),
        sa.Column("subject", sa.LargeBinary(length=32), nullable=True),
        sa.Column("token_digest", sa.LargeBinary(length=32), nullable=True),
        sa.Column("attributes", sa.String(length=200), nullable=False),
        sa.Column("code_enc", sa.LargeBinary(), nullable=False),
        sa.Column("message_enc", sa.LargeBinary(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("code_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("collected_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["party_id"],
            ["relying_parties.id"],
            name=op.f("fk_approval_requests_party_id_relying_parties"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_approval_requests_account_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval_requests")),
        sa.UniqueConstraint("token_digest", name=op.f("uq_approval_requests_token_digest")),
    )
    op.create_index(
        op.f("ix_approval_requests_account_id"), "approval_requests", ["account_id"], unique=False
    )
    op.create_index(
        op.f("ix_approval_requests_expires_at"), "approval_requests", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_approval_requests_expires_at"), table_name="approval_requests")
    op.drop_index(op.f("ix_approval_requests_account_id"), table_name="approval_requests")
    op.drop_table("approval_requests")
