"""party client certificates: a relying party may be bound to one (mutual TLS)

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-25

`relying_parties.client_cert_sha256` holds the SHA-256 of the DER client
certificate a bound party must call with; NULL (every existing party) keeps
the API key alone. Only a nullable column is added, which SQLite does in
place.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "relying_parties",
        sa.Column("client_cert_sha256", sa.LargeBinary(length=32), nullable=True),
    )


def downgrade() -> None:
    # SQLite drops columns by rebuilding the table; batch mode does that.
    with op.batch_alter_table("relying_parties") as batch:
        batch.drop_column("client_cert_sha256")
