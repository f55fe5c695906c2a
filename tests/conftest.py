"""Database fixtures: every integration test runs on SQLite and on PostgreSQL.

Each kind is migrated once per session into a template that every test's
fresh database is copied from (running the 13 migrations per test cost most
of a second each); tests/integration/test_store.py still runs them from
scratch, on an empty database of each kind (`empty_database_url`)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

POSTGRES_ADMIN_DSN = os.environ.get(
    "EID_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
KINDS = ["sqlite", "postgresql"]


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as connection:
        connection.execute(sql.encode())


def _pg_url(name: str) -> str:
    return f"{POSTGRES_ADMIN_DSN.rsplit('/', 1)[0]}/{name}"


def _skip_postgres_if_asked() -> None:
    if os.environ.get("EID_TEST_SKIP_POSTGRES") == "1":
        pytest.skip("EID_TEST_SKIP_POSTGRES=1: PostgreSQL tests not run")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file whose write-ahead log is folded in, so the
    file alone is the whole database and a byte copy of it is another one."""
    from eid_service.store.migrate import upgrade

    path = tmp_path_factory.mktemp("template") / "eid.db"
    upgrade(f"sqlite:///{path}")
    connection = sqlite3.connect(path)
    try:
        busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0, "the template is still in use"
    finally:
        connection.close()
    # Nothing left in the log (the -shm index is rebuilt by whoever opens the copy).
    wal = path.with_name(path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A migrated PostgreSQL database, used only as CREATE DATABASE's
    TEMPLATE (which needs it to have no connections: the migration's
    engine is disposed before this returns)."""
    from eid_service.store.migrate import upgrade

    name = f"eid_template_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        upgrade(_pg_url(name))
        yield name
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=KINDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated, empty database of each supported kind."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "eid.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    _skip_postgres_if_asked()
    template_name: str = request.getfixturevalue("postgres_template")
    with _postgres_database(f'TEMPLATE "{template_name}"') as url:
        yield url


@pytest.fixture(params=KINDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database of each kind with no schema at all (not migrated)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'eid.db'}"
        return
    _skip_postgres_if_asked()
    with _postgres_database("") as url:
        yield url


@contextmanager
def _postgres_database(options: str) -> Iterator[str]:
    """A new database (CREATE DATABASE name `options`), dropped afterwards."""
    name = f"eid_test_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}" {options}'.rstrip())
    try:
        yield _pg_url(name)
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
