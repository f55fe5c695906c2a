"""party rate buckets: token buckets per party and per (party, citizen)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24

Reserved so work in parallel keeps one linear chain: the party rate limits fill it in.
"""

from collections.abc import Sequence

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
