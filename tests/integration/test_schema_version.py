"""Whether a database is at the schema we ship, as a server asks before it
serves (store/schema_version.py, without Alembic): the shipped revisions are
the ones Alembic finds, however a migration file spells them; only a database
at the newest one is current, and every other state is told apart."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text

from eid_service.store.database import create_engine
from eid_service.store.migrate import alembic_config, upgrade
from eid_service.store.schema_version import (
    VERSIONS,
    ShippedMigrationsUnreadable,
    read_revisions,
    schema_problem,
    shipped_revisions,
)

NOT_CURRENT = "the database schema is not current: run `eid-server migrate`"


def _alembic(versions: Path) -> tuple[set[str], tuple[str, ...]]:
    script = ScriptDirectory(str(versions.parent), version_locations=[str(versions)])
    return {r.revision for r in script.walk_revisions()}, tuple(script.get_heads())


def test_the_shipped_revisions_and_head_are_the_ones_alembic_finds() -> None:
    revisions, heads = _alembic(VERSIONS)
    shipped = shipped_revisions()
    assert (set(shipped.revisions), (shipped.head,)) == (revisions, heads)


# Ways a migration file may spell its revisions (Alembic's own template
# writes repr(): single quotes), one file each after a plain first one.
SPELLINGS = {
    "single quotes": "revision = '0002'\ndown_revision = '0001'\n",
    "annotated, spaced": 'revision : str = "0002"\ndown_revision : str | None = "0001"\n',
    "down first": 'down_revision: str | None = "0001"\nrevision: str = "0002"\n',
    "merge": 'revision = "0002"\ndown_revision = ("0001", "0001b")\n',
}


@pytest.mark.parametrize("spelling", SPELLINGS.values(), ids=SPELLINGS.keys())
def test_any_spelling_of_a_migration_reads_as_alembic_reads_it(
    tmp_path: Path, spelling: str
) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "__init__.py").write_text("")
    (versions / "0001_first.py").write_text('revision = "0001"\ndown_revision = None\n')
    (versions / "0001b_side.py").write_text('revision = "0001b"\ndown_revision = "0001"\n')
    if "0001b" not in spelling:  # no merge: the side branch is not shipped
        (versions / "0001b_side.py").unlink()
    (versions / "0002_second.py").write_text(spelling)
    revisions, heads = _alembic(versions)
    read = read_revisions(versions)
    assert (set(read.revisions), (read.head,)) == (revisions, heads) == (revisions, ("0002",))


def test_a_migration_without_literal_revisions_or_with_two_heads_is_refused(
    tmp_path: Path,
) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "0001_first.py").write_text('revision = "0001"\ndown_revision = None\n')
    (versions / "0002_second.py").write_text('revision = compute()\ndown_revision = "0001"\n')
    with pytest.raises(ShippedMigrationsUnreadable, match=r"0002_second\.py"):
        read_revisions(versions)
    (versions / "0002_second.py").write_text('revision = "0002"\ndown_revision = None\n')
    with pytest.raises(ShippedMigrationsUnreadable, match="2 heads"):
        read_revisions(versions)


def test_only_a_database_at_the_shipped_head_is_current(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)
    head = shipped_revisions().head
    try:
        assert schema_problem(engine) == NOT_CURRENT  # no schema at all
        upgrade(empty_database_url, f"{int(head) - 1:04d}")
        assert schema_problem(engine) == NOT_CURRENT
        upgrade(empty_database_url)
        assert schema_problem(engine) is None
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO alembic_version VALUES ('0001')"))
        assert schema_problem(engine) == (
            "the database records 2 schema revisions at once: run `eid-server migrate`"
        )
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM alembic_version"))
        assert schema_problem(engine) == NOT_CURRENT
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO alembic_version VALUES ('9999')"))
        assert schema_problem(engine) == (
            "the database schema is at revision 9999, which this build does not ship"
            " (a newer eid migrated it): serve it with that eid"
        )
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE alembic_version SET version_num = :head"), {"head": head}
            )
        command.downgrade(alembic_config(empty_database_url), "-1")
        assert schema_problem(engine) == NOT_CURRENT
    finally:
        engine.dispose()


def test_a_server_process_never_imports_alembic() -> None:
    # `eid-server serve` runs in the CLI's process (one worker) or in spawned
    # workers (serve.py): neither needs Alembic (about 20 MB of memory) to
    # check the schema.
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, eid_service.cli, eid_service.serve;"
            "print(sorted(m for m in ('alembic', 'mako') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert loaded.stdout.strip() == "[]"
