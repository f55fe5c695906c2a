"""Whether a database is at the schema we ship, as a server asks before it
serves (store/schema_version.py, without Alembic): never before the first
migration, nor one migration short of the newest, only at the newest, which
is the head Alembic itself finds."""

from __future__ import annotations

import subprocess
import sys

from alembic import command

from eid_service.store.database import create_engine
from eid_service.store.migrate import alembic_config, head_revision, upgrade
from eid_service.store.schema_version import schema_is_current, shipped_head


def test_the_shipped_head_is_the_one_alembic_finds(database_url: str) -> None:
    assert shipped_head() == head_revision(database_url)


def test_only_a_database_at_the_shipped_head_is_current(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)
    try:
        assert not schema_is_current(engine)  # no schema at all
        before_head = f"{int(shipped_head()) - 1:04d}"
        upgrade(empty_database_url, before_head)
        assert not schema_is_current(engine)
        upgrade(empty_database_url)
        assert schema_is_current(engine)
        command.downgrade(alembic_config(empty_database_url), "-1")
        assert not schema_is_current(engine)
    finally:
        engine.dispose()


def test_a_server_process_never_imports_alembic() -> None:
    # `eid-server serve` runs in the CLI's process (one worker) or in spawned
    # workers (serve.py): neither needs Alembic (about 11 MB of memory) to
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
