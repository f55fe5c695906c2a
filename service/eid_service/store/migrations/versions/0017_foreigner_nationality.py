"""foreigners: an account's nationality; the basic scope includes it

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-24

Foreigners register too (with their passport); their nationality is released
under the basic scope, so `accounts` gains it, sealed like the other personal
fields (NULL for citizens: they have none to release). The basic scope now
stands for full name, birth date, gender and nationality: a party granted the
first three (what "basic" meant until now) is granted nationality as well,
otherwise asking for SCOPE_BASIC would be refused to it. A nullable column is
added in place, on SQLite too.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BASIC = {"full_name", "birth_date", "gender"}
_NATIONALITY = "nationality"


def _rescope(change: str) -> None:
    """Adds ("add") or removes nationality in the scopes of parties granted
    the rest of the basic scope (scopes are sorted, comma-joined attributes)."""
    bind = op.get_bind()
    parties = sa.table("relying_parties", sa.column("id"), sa.column("scopes"))
    for party_id, scopes in bind.execute(sa.select(parties.c.id, parties.c.scopes)).all():
        granted = {s for s in (scopes or "").split(",") if s}
        if not granted.issuperset(_BASIC):
            continue
        updated = granted | {_NATIONALITY} if change == "add" else granted - {_NATIONALITY}
        if updated != granted:
            bind.execute(
                sa.update(parties)
                .where(parties.c.id == party_id)
                .values(scopes=",".join(sorted(updated)))
            )


def upgrade() -> None:
    op.add_column("accounts", sa.Column("nationality_enc", sa.LargeBinary(), nullable=True))
    _rescope("add")


def downgrade() -> None:
    _rescope("remove")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("nationality_enc")
