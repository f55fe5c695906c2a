"""per-subject audit chains, credential attempts, sharded party failures

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24

Audit chains move from accounts to subjects (the blind index of an ID
number), with their heads in `audit_chains`; existing events keep their
digests and are attached to their account's subject (events of unknown ID
numbers become chains of one). Password throttling moves from the account
row (and its check lease) to `credential_attempts`, the party failure
counter from the party row to `party_failures`.
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from eid_service.store.models import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_chains",
        sa.Column("subject", sa.LargeBinary(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("head", sa.LargeBinary(length=32), nullable=True),
        sa.PrimaryKeyConstraint("subject", name=op.f("pk_audit_chains")),
    )
    op.create_table(
        "credential_attempts",
        sa.Column("subject", sa.LargeBinary(length=32), nullable=False),
        sa.Column("source", sa.String(length=80), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", UTCDateTime(), nullable=False),
        sa.Column("last_failure_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("subject", "source", name=op.f("pk_credential_attempts")),
    )
    op.create_index(
        op.f("ix_credential_attempts_last_failure_at"),
        "credential_attempts",
        ["last_failure_at"],
        unique=False,
    )
    op.create_table(
        "party_failures",
        sa.Column("party_id", sa.String(length=40), nullable=False),
        sa.Column("window_start", UTCDateTime(), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["party_id"],
            ["relying_parties.id"],
            name=op.f("fk_party_failures_party_id_relying_parties"),
        ),
        sa.PrimaryKeyConstraint(
            "party_id", "window_start", "shard", name=op.f("pk_party_failures")
        ),
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("last_failed_password_at")
        batch_op.drop_column("failed_password_attempts")
        batch_op.drop_column("password_check_until")
    with op.batch_alter_table("relying_parties", schema=None) as batch_op:
        batch_op.drop_column("failed_verifications")
        batch_op.drop_column("failure_window_start")

    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subject", sa.LargeBinary(length=32), nullable=True))
    _attach_events_to_subjects()
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.alter_column("subject", existing_type=sa.LargeBinary(length=32), nullable=False)
        batch_op.drop_index("ix_audit_events_account_seq")
        batch_op.create_index("ix_audit_events_subject_seq", ["subject", "seq"], unique=True)

    # Earlier records were scoped per RPC only and never expired; the new
    # scopes (RPC and caller) can never match them, so they go.
    op.execute("DELETE FROM idempotency_records")
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", UTCDateTime(), nullable=False))
        batch_op.create_index(
            batch_op.f("ix_idempotency_records_expires_at"), ["expires_at"], unique=False
        )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sessions_expires_at"), ["expires_at"], unique=False)
    with op.batch_alter_table("shares", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shares_expires_at"), ["expires_at"], unique=False)


def _attach_events_to_subjects() -> None:
    bind = op.get_bind()
    events = sa.table(
        "audit_events",
        sa.column("id", sa.String),
        sa.column("account_id", sa.String),
        sa.column("subject", sa.LargeBinary),
        sa.column("seq", sa.Integer),
        sa.column("digest", sa.LargeBinary),
    )
    accounts = sa.table(
        "accounts", sa.column("id", sa.String), sa.column("personal_id_index", sa.LargeBinary)
    )
    chains = sa.table(
        "audit_chains",
        sa.column("subject", sa.LargeBinary),
        sa.column("seq", sa.Integer),
        sa.column("head", sa.LargeBinary),
    )
    index_of = dict(bind.execute(sa.select(accounts.c.id, accounts.c.personal_id_index)).all())
    heads: dict[bytes, tuple[int, bytes]] = {}
    rows = bind.execute(
        sa.select(events.c.id, events.c.account_id, events.c.seq, events.c.digest)
    ).all()
    for event_id, account_id, seq, digest in rows:
        subject = index_of.get(account_id) if account_id else None
        if subject is None:  # an unknown ID number's event: a chain of its own
            subject = hashlib.sha256(event_id.encode()).digest()
        bind.execute(sa.update(events).where(events.c.id == event_id).values(subject=subject))
        if seq >= heads.get(subject, (0, b""))[0]:
            heads[subject] = (seq, digest)
    for subject, (seq, digest) in heads.items():
        bind.execute(sa.insert(chains).values(subject=subject, seq=seq, head=digest))


def downgrade() -> None:
    with op.batch_alter_table("shares", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shares_expires_at"))
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sessions_expires_at"))
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_records_expires_at"))
        batch_op.drop_column("expires_at")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_subject_seq")
        batch_op.create_index("ix_audit_events_account_seq", ["account_id", "seq"], unique=True)
        batch_op.drop_column("subject")
    with op.batch_alter_table("relying_parties", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("failed_verifications", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("failure_window_start", sa.DateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("failed_password_attempts", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("last_failed_password_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("password_check_until", sa.DateTime(timezone=True), nullable=True)
        )
    op.drop_table("party_failures")
    op.drop_index(op.f("ix_credential_attempts_last_failure_at"), table_name="credential_attempts")
    op.drop_table("credential_attempts")
    op.drop_table("audit_chains")
