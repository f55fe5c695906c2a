"""Database fixtures: every integration test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

POSTGRES_ADMIN_DSN = os.environ.get(
    "EID_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as connection:
        connection.execute(sql.encode())


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated, empty database of each supported kind."""
    from eid_service.store.migrate import upgrade

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'eid.db'}"
        upgrade(url)
        yield url
        return
    if os.environ.get("EID_TEST_SKIP_POSTGRES") == "1":
        pytest.skip("EID_TEST_SKIP_POSTGRES=1: PostgreSQL tests not run")
    name = f"eid_test_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
