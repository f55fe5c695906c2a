"""verify mode locks and deceased registry records

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-24

Reserved so work in parallel keeps one linear chain: the citizen's mode locks fill it in.
"""

from collections.abc import Sequence

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
