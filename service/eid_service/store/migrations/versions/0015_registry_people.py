"""registry people: foreigners, enrolled biometrics, guardians, documents, key ids

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-24

The population registry grows from demographics to what registration needs:
`registry_citizens` gains the kind of person (citizen or foreigner), a
foreigner's passport (blind index + sealed record), the enrolled portrait and
fingerprint templates (sealed) and the key id of the row's blobs (for
`rotate-keys`); `registry_guardians` links children to parents or guardians
and `registry_documents` holds documents issued to a person. Existing rows
are citizens with no biometrics and a NULL key id (their blobs name their
key). Only nullable or defaulted columns are added to the existing table,
which SQLite does in place.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "registry_citizens",
        sa.Column("kind", sa.String(length=12), server_default="citizen", nullable=False),
    )
    op.add_column("registry_citizens", sa.Column("key_id", sa.String(length=64), nullable=True))
    op.add_column(
        "registry_citizens", sa.Column("passport_index", sa.LargeBinary(length=32), nullable=True)
    )
    op.add_column("registry_citizens", sa.Column("passport_enc", sa.LargeBinary(), nullable=True))
    op.add_column("registry_citizens", sa.Column("portrait_enc", sa.LargeBinary(), nullable=True))
    op.add_column(
        "registry_citizens", sa.Column("fingerprints_enc", sa.LargeBinary(), nullable=True)
    )
    # A unique index, not a constraint: SQLite cannot add constraints in place.
    op.create_index(
        "uq_registry_citizens_passport_index",
        "registry_citizens",
        ["passport_index"],
        unique=True,
    )
    op.create_table(
        "registry_guardians",
        sa.Column("child_index", sa.LargeBinary(length=32), nullable=False),
        sa.Column("guardian_index", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("child_index", "guardian_index", name="pk_registry_guardians"),
    )
    op.create_index(
        "ix_registry_guardians_guardian_index", "registry_guardians", ["guardian_index"]
    )
    op.create_table(
        "registry_documents",
        sa.Column("doc_type", sa.String(length=32), nullable=False),
        sa.Column("number_index", sa.LargeBinary(length=32), nullable=False),
        sa.Column("holder_index", sa.LargeBinary(length=32), nullable=False),
        sa.Column("record_enc", sa.LargeBinary(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("doc_type", "number_index", name="pk_registry_documents"),
    )
    op.create_index("ix_registry_documents_holder_index", "registry_documents", ["holder_index"])


def downgrade() -> None:
    op.drop_index("ix_registry_documents_holder_index", table_name="registry_documents")
    op.drop_table("registry_documents")
    op.drop_index("ix_registry_guardians_guardian_index", table_name="registry_guardians")
    op.drop_table("registry_guardians")
    op.drop_index("uq_registry_citizens_passport_index", table_name="registry_citizens")
    with op.batch_alter_table("registry_citizens") as batch:
        for column in (
            "fingerprints_enc",
            "portrait_enc",
            "passport_enc",
            "passport_index",
            "key_id",
            "kind",
        ):
            batch.drop_column(column)
