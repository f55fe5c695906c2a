"""account documents: documents linked to level-2 accounts

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-26

`account_documents` holds the documents (driver's licence, vehicle
registration, health and social insurance, tax code) a level-2 citizen or a
registration officer linked to an account from the registries of documents:
one row per account, type and keyed index of the number (the index
`registry_documents` uses), the record (number, issuer, validity) sealed with
the key id it was sealed with (for `rotate-keys`), when it was linked, and
who linked it ("citizen" or the officer's id). Nothing identifying in clear.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from eid_service.store.models import UTCDateTime

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "account_documents",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("doc_type", sa.String(length=32), nullable=False),
        sa.Column("number_index", sa.LargeBinary(length=32), nullable=False),
        sa.Column("record_enc", sa.LargeBinary(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("linked_at", UTCDateTime(), nullable=False),
        sa.Column("linked_by", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_account_documents_account_id_accounts"),
        ),
        sa.PrimaryKeyConstraint(
            "account_id", "doc_type", "number_index", name=op.f("pk_account_documents")
        ),
    )


def downgrade() -> None:
    op.drop_table("account_documents")
