"""party key rotated at: when a rotation made the party's current API key

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-29

Two operators rotating one party's key minutes apart (both told of a leak,
say) each got a new key, and the second rotation stopped the key the first
had just handed to the party, with --overlap 0 at once: the party was cut
off, and the second operator was told only that "the old API key stops
working now". A rotation of a key that a rotation made less than 10 minutes
ago is now refused unless forced (KEY_RECENTLY_ROTATED), which needs to know
when the current key was made: `relying_parties` gains `key_rotated_at`.
NULL is a key made when the party was created, or by a rotation before the
upgrade: never recent. A nullable column is added in place, on SQLite too.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from eid_service.store.models import UTCDateTime

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("relying_parties", sa.Column("key_rotated_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("relying_parties") as batch:
        batch.drop_column("key_rotated_at")
