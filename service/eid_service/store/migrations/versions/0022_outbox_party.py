"""outbox party: a status event's party in clear, for fair delivery

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-28

All parties' status events share one outbox route; a dispatcher sends at
most a few of one party's at once, so one party's slow receiver cannot take
every delivery slot. To pick the next due delivery without claiming (and
decrypting) it, the dispatcher must read whose it is: `outbox` gains
`party_id`, the party a status event is for (NULL for citizens' messages).
The party is sealed in `destination_enc` as well; which parties verified
whom is in clear already (verification_receipts). Events queued before the
upgrade have none and are sent as before, without the per-party limit. A
nullable column is added in place, on SQLite too.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("party_id", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("party_id")
