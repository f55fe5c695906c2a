"""Whether a database is at the newest schema we ship, asked without Alembic:
importing it (and Mako with it) costs a server about 20 MB of memory it
would never use again, since only `eid-server migrate` migrates
(store/migrate.py). The shipped revisions are read from the migration
files' own module-level `revision` and `down_revision` assignments (parsed,
not imported); a test checks the result against Alembic's."""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, inspect, text

VERSIONS = Path(__file__).parent / "migrations" / "versions"
# Alembic's bookkeeping table: one row, the revision the database is at.
VERSION_TABLE = "alembic_version"
_CURRENT = text("SELECT version_num FROM alembic_version")
_MIGRATE = "run `eid-server migrate`"


class ShippedMigrationsUnreadable(RuntimeError):
    """The migration files cannot tell the newest revision (a packaging fault)."""


@dataclass(frozen=True)
class ShippedRevisions:
    revisions: frozenset[str]
    head: str


def _assignments(path: Path) -> dict[str, object]:
    """The literal values of the module-level assignments of `path`."""
    values: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8"), str(path)).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name):
            try:
                values[target.id] = ast.literal_eval(value)
            except ValueError:
                continue  # not a literal: not one of ours
    return values


def _built_on(down: object, path: Path) -> set[str]:
    if down is None:
        return set()
    if isinstance(down, str):
        return {down}
    if isinstance(down, tuple | list) and all(isinstance(d, str) for d in down):
        return set(down)  # a merge revision
    raise ShippedMigrationsUnreadable(f"{path.name}: down_revision is not a revision or a tuple")


@functools.cache
def shipped_revisions() -> ShippedRevisions:
    """Every revision we ship, and the one none builds on (`migrate`'s head)."""
    return read_revisions(VERSIONS)


def read_revisions(versions: Path) -> ShippedRevisions:
    """The revisions of the migration files in `versions`, and their head."""
    revisions: set[str] = set()
    built_on: set[str] = set()
    for path in sorted(versions.glob("*.py")):
        if path.name == "__init__.py":
            continue
        values = _assignments(path)
        revision = values.get("revision")
        if not isinstance(revision, str) or "down_revision" not in values:
            raise ShippedMigrationsUnreadable(
                f"{path.name}: no literal `revision` and `down_revision` at module level"
            )
        revisions.add(revision)
        built_on |= _built_on(values["down_revision"], path)
    heads = revisions - built_on
    if len(heads) != 1:
        raise ShippedMigrationsUnreadable(f"the shipped migrations have {len(heads)} heads")
    return ShippedRevisions(frozenset(revisions), heads.pop())


def schema_problem(engine: Engine) -> str | None:
    """None when the database is at the newest revision we ship; otherwise
    what is wrong, in words for the operator. Read only: on SQLite, pass an
    engine that does not take the write lock."""
    shipped = shipped_revisions()
    with engine.connect() as connection:
        at = []
        if inspect(connection).has_table(VERSION_TABLE):
            at = [str(row[0]) for row in connection.execute(_CURRENT)]
    if at == [shipped.head]:
        return None
    if len(at) == 1 and at[0] not in shipped.revisions:
        return (
            f"the database schema is at revision {at[0]}, which this build does not ship"
            " (a newer eid migrated it): serve it with that eid"
        )
    if len(at) > 1:
        return f"the database records {len(at)} schema revisions at once: {_MIGRATE}"
    return f"the database schema is not current: {_MIGRATE}"
