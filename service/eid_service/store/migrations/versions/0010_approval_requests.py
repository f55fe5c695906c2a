"""approval requests: a party asks, the citizen approves on their device

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24

Reserved so work in parallel keeps one linear chain: the approval flow fills it in.
"""

from collections.abc import Sequence

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
