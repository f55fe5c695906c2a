"""account life: rotating sessions, lock and unlock, one-time code purposes, rate counters, officers

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24

Sessions become devices with an access token and a rotating refresh token;
the old table held only 15-minute bearer tokens, so it is replaced (everyone
signed in is signed out once). One-time codes gain a purpose (activation,
lock, unlock); accounts a lock time; shares a revocation time (a lock ends
them); audit events an actor (an officer). Rate counters hold per-source and
per-destination limits across processes; officers are the operator-created
credentials that may unlock accounts.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from eid_service.store.models import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_table("sessions")
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("access_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("access_expires_at", UTCDateTime(), nullable=False),
        sa.Column("refresh_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("refresh_expires_at", UTCDateTime(), nullable=False),
        sa.Column("device_enc", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_reason", sa.String(length=24), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_sessions_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
        sa.UniqueConstraint("access_digest", name=op.f("uq_sessions_access_digest")),
        sa.UniqueConstraint("refresh_digest", name=op.f("uq_sessions_refresh_digest")),
    )
    op.create_index(op.f("ix_sessions_account_id"), "sessions", ["account_id"], unique=False)
    op.create_index(
        op.f("ix_sessions_refresh_expires_at"), "sessions", ["refresh_expires_at"], unique=False
    )
    op.create_table(
        "spent_refresh_tokens",
        sa.Column("digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("spent_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_spent_refresh_tokens_session_id_sessions"),
        ),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_spent_refresh_tokens")),
    )
    op.create_index(
        op.f("ix_spent_refresh_tokens_session_id"),
        "spent_refresh_tokens",
        ["session_id"],
        unique=False,
    )
    op.create_table(
        "rate_counters",
        sa.Column("key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("window_start", UTCDateTime(), nullable=False),
        sa.Column("window_end", UTCDateTime(), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", "window_start", name=op.f("pk_rate_counters")),
    )
    op.create_index(
        op.f("ix_rate_counters_window_end"), "rate_counters", ["window_end"], unique=False
    )
    op.create_table(
        "officers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("key_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("disabled_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_officers")),
        sa.UniqueConstraint("key_digest", name=op.f("uq_officers_key_digest")),
    )
    with op.batch_alter_table("activation_codes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("purpose", sa.String(length=16), server_default="activation", nullable=False)
        )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locked_at", UTCDateTime(), nullable=True))
    with op.batch_alter_table("shares", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revoked_at", UTCDateTime(), nullable=True))
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=32), nullable=True))
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("actor", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_column("actor")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("kind")
    with op.batch_alter_table("shares", schema=None) as batch_op:
        batch_op.drop_column("revoked_at")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("locked_at")
    with op.batch_alter_table("activation_codes", schema=None) as batch_op:
        batch_op.drop_column("purpose")
    op.drop_table("officers")
    op.drop_index(op.f("ix_rate_counters_window_end"), table_name="rate_counters")
    op.drop_table("rate_counters")
    op.drop_index(op.f("ix_spent_refresh_tokens_session_id"), table_name="spent_refresh_tokens")
    op.drop_table("spent_refresh_tokens")
    op.drop_table("sessions")
    op.create_table(
        "sessions",
        sa.Column("token_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_sessions_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("token_digest", name=op.f("pk_sessions")),
    )
    op.create_index(op.f("ix_sessions_account_id"), "sessions", ["account_id"], unique=False)
    op.create_index(op.f("ix_sessions_expires_at"), "sessions", ["expires_at"], unique=False)
