"""relying party failure counter

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("relying_parties", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("failed_verifications", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("failure_window_start", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("relying_parties", schema=None) as batch_op:
        batch_op.drop_column("failure_window_start")
        batch_op.drop_column("failed_verifications")
