"""sealed gender: accounts and registry_citizens seal gender like the other personal fields

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-27

Gender was stored in clear in `accounts.gender` and `registry_citizens.gender`.
Both tables gain `gender_enc` (sealed, bound to the row and the field like
their other `_enc` columns) and `gender` becomes nullable: rows written from
now on hold it sealed only, `gender` NULL.

A migration holds no keys, so existing rows are left as they are (gender in
clear, `gender_enc` NULL); the code reads either. `eid-server rotate-keys`
(`--resume` needs no new key) seals them and clears `gender`.

Making a column nullable rebuilds the table on SQLite (copy, drop, rename;
env.py turns foreign key enforcement off meanwhile and checks the keys before
committing); PostgreSQL alters it in place.

The downgrade has no keys either: it refuses while any row holds gender only
sealed (it would lose it), and says so; with every gender still in clear it
drops `gender_enc` and makes `gender` NOT NULL again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("accounts", "registry_citizens")


class SealedGenderDowngradeRefused(RuntimeError):
    """Rows hold gender only sealed: a downgrade without keys would lose it."""


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("gender_enc", sa.LargeBinary(), nullable=True))
            batch.alter_column("gender", existing_type=sa.String(length=8), nullable=True)


def _sealed_only(table: str) -> int:
    """Rows of `table` whose gender is only in `gender_enc`."""
    count = sa.select(sa.func.count()).select_from(sa.table(table, sa.column("gender")))
    return int(op.get_bind().execute(count.where(sa.column("gender").is_(None))).scalar_one())


def downgrade() -> None:
    sealed = {table: _sealed_only(table) for table in _TABLES}
    if any(sealed.values()):
        counts = ", ".join(f"{n:,} row(s) of {table}" for table, n in sealed.items() if n)
        raise SealedGenderDowngradeRefused(
            f"refusing to downgrade below 0020: {counts} hold gender only sealed"
            " (gender_enc, written since 0020) and a migration has no keys to open it;"
            " dropping gender_enc would lose it. Restore the backup taken before the"
            " upgrade to 0020, or first write those genders back into the gender column"
            " with a step that holds the key ring (eid ships none: personal data stays"
            " sealed at rest), then downgrade again. Nothing was changed."
        )
    for table in reversed(_TABLES):
        with op.batch_alter_table(table) as batch:
            batch.alter_column("gender", existing_type=sa.String(length=8), nullable=False)
            batch.drop_column("gender_enc")
