"""Whether a database is migrated to the newest schema we ship, asked without
Alembic: importing it (and Mako with it) costs a server about 11 MB of
memory it would never use again, since only `eid-server migrate` migrates
(store/migrate.py). The newest revision is read from the migration files'
own `revision` and `down_revision` lines; a test checks it against Alembic's
answer."""

from __future__ import annotations

import functools
import re
from pathlib import Path

from sqlalchemy import Engine, inspect, text

VERSIONS = Path(__file__).parent / "migrations" / "versions"
# Alembic's bookkeeping table, and the lines each migration file declares itself by.
VERSION_TABLE = "alembic_version"
_REVISION = re.compile(r'^revision(?::\s*str)?\s*=\s*"([^"]+)"', re.MULTILINE)
_CURRENT = text("SELECT version_num FROM alembic_version")
_DOWN_REVISION = re.compile(r'^down_revision(?::\s*[^=]+)?\s*=\s*(?:"([^"]+)"|None)', re.MULTILINE)


@functools.cache
def shipped_head() -> str:
    """The revision no shipped migration builds on (the one `migrate` upgrades to)."""
    revisions: set[str] = set()
    built_on: set[str] = set()
    for path in VERSIONS.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        revision = _REVISION.search(source)
        if revision is None:
            continue  # __init__.py
        down = _DOWN_REVISION.search(source)
        if down is None:
            raise RuntimeError(f"{path.name}: a revision without a down_revision line")
        revisions.add(revision.group(1))
        if down.group(1) is not None:
            built_on.add(down.group(1))
    heads = revisions - built_on
    if len(heads) != 1:
        raise RuntimeError(f"the shipped migrations have {len(heads)} heads, not one")
    return heads.pop()


def schema_is_current(engine: Engine) -> bool:
    """True when the database is migrated to the newest revision we ship."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return False
        rows = connection.execute(_CURRENT).all()
    return [row[0] for row in rows] == [shipped_head()]
