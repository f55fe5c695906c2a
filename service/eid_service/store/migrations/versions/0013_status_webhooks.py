"""status webhooks: parties subscribe to status changes of citizens they verified

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-24

Reserved so work in parallel keeps one linear chain: the status events fill it in.
"""

from collections.abc import Sequence

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
