"""audit chain head trigger: the database keeps each chain's head

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-25

An audit append ran three statements: bump the subject's chain (returning the
previous head), insert the event, then set the chain's head to the event's
digest. A trigger on audit_events now sets the head in the same transaction,
so an append is two statements and one round trip fewer on PostgreSQL, for
every audited call (each Verify among them). Heads already stored are right:
nothing is rewritten.

SQLite drops a table's triggers when it rebuilds the table (a batch
alteration of audit_events): such a migration must create this one again.
The audit chain tests fail without it (every head stays behind).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelt out, not formatted: a migration's SQL is read as it runs.
_SET_HEAD = "UPDATE audit_chains SET head = NEW.digest WHERE subject = NEW.subject;"


def upgrade() -> None:
    if _postgres():
        op.execute(
            "CREATE FUNCTION audit_events_chain_head() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN " + _SET_HEAD + " RETURN NULL; END $$"
        )
        op.execute(
            "CREATE TRIGGER trg_audit_events_chain_head AFTER INSERT ON audit_events"
            " FOR EACH ROW EXECUTE FUNCTION audit_events_chain_head()"
        )
    else:
        op.execute(
            "CREATE TRIGGER trg_audit_events_chain_head AFTER INSERT ON audit_events"
            " FOR EACH ROW BEGIN " + _SET_HEAD + " END"
        )


def downgrade() -> None:
    if _postgres():
        op.execute("DROP TRIGGER trg_audit_events_chain_head ON audit_events")
        op.execute("DROP FUNCTION audit_events_chain_head()")
    else:
        op.execute("DROP TRIGGER trg_audit_events_chain_head")


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"
