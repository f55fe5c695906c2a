"""relying party administration: status, contact, modes, rate limits, key rotation

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25

Relying parties gain a status (ACTIVE or SUSPENDED, with the time of the
suspension), a business contact, the Verify modes they may use, their rate
limits (whole party and per citizen) and the previous API key with its
expiry, so a rotated key keeps working for an overlap. Existing parties
become ACTIVE and keep the modes they had before modes were chosen per
party: password and QR share. Deletion stays soft (disabled_at).

Only columns and an index are added, which SQLite does in place: the table,
which other tables reference, is not rebuilt.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from eid_service.store.models import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    "status",
    "suspended_at",
    "contact",
    "modes",
    "rate_per_minute",
    "citizen_rate_per_minute",
    "previous_api_key_digest",
    "previous_key_expires_at",
)


def upgrade() -> None:
    for column in (
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("suspended_at", UTCDateTime(), nullable=True),
        sa.Column("contact", sa.String(length=200), server_default="", nullable=False),
        sa.Column("modes", sa.String(length=100), server_default="", nullable=False),
        sa.Column("rate_per_minute", sa.Integer(), server_default="600", nullable=False),
        sa.Column("citizen_rate_per_minute", sa.Integer(), server_default="10", nullable=False),
        sa.Column("previous_api_key_digest", sa.LargeBinary(length=32), nullable=True),
        sa.Column("previous_key_expires_at", UTCDateTime(), nullable=True),
    ):
        op.add_column("relying_parties", column)
    op.create_index(
        op.f("ix_relying_parties_previous_api_key_digest"),
        "relying_parties",
        ["previous_api_key_digest"],
        unique=True,
    )
    # What every party could do before modes were stored.
    op.execute("UPDATE relying_parties SET modes = 'password,qr_share'")


def downgrade() -> None:
    op.drop_index(op.f("ix_relying_parties_previous_api_key_digest"), table_name="relying_parties")
    with op.batch_alter_table("relying_parties", schema=None) as batch_op:
        for name in reversed(_COLUMNS):
            batch_op.drop_column(name)
