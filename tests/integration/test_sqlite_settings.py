"""SQLite as eid opens it, writer and readers alike: write-ahead log, commits
durable against power loss (synchronous=FULL), foreign keys enforced, and
the journals of a group commit's savepoints kept in memory, so a commit
creates no temp file on disk."""

from __future__ import annotations

import asyncio
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from eid_service.security.field_cipher import FieldCipher
from eid_service.security.keyed_hash import KeyedHasher
from eid_service.security.keys import generate_key_ring
from eid_service.store.protection import DataProtection
from eid_service.store.uow import SqlUnitOfWork
from eid_service.use_cases.ports import AuditEntry, Repositories

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
# Audit chains changed by each call of the batch: their rows span dozens of pages.
SUBJECTS = 2000


@pytest.fixture
def uow(sqlite_template: Path, tmp_path: Path) -> SqlUnitOfWork:
    path = tmp_path / "eid.db"
    shutil.copyfile(sqlite_template, path)
    ring = generate_key_ring()
    protection = DataProtection(FieldCipher(ring), KeyedHasher(ring.hmac_key))
    return SqlUnitOfWork(f"sqlite:///{path}", protection)


def test_every_connection_is_durable_and_keeps_savepoint_journals_in_memory(
    uow: SqlUnitOfWork,
) -> None:
    try:
        for engine in (uow.engine, uow.read_engine):
            with engine.connect() as connection:
                raw = connection.connection.driver_connection
                assert raw is not None
                settings = {
                    name: raw.execute(f"PRAGMA {name}").fetchone()[0]
                    for name in ("journal_mode", "synchronous", "foreign_keys", "temp_store")
                }
            assert settings == {
                "journal_mode": "wal",
                "synchronous": 2,  # FULL
                "foreign_keys": 1,
                "temp_store": 2,  # MEMORY
            }
    finally:
        uow.close()


def _open_temp_files() -> list[str]:
    """Files this process holds open that SQLite made for temporary data
    (`etilqs_*`, unlinked as soon as opened)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if "etilqs_" in target:
            found.append(target)
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux /proc")
def test_a_group_commit_with_savepoints_opens_no_temp_file(uow: SqlUnitOfWork) -> None:
    subjects = [i.to_bytes(32, "big") for i in range(SUBJECTS)]

    def append_to_all(r: Repositories) -> list[str]:
        for subject in subjects:
            r.audit.append(AuditEntry(subject, None, None, "verify.password", "verified", AT))
        return _open_temp_files()

    async def batch() -> list[list[str]]:
        # Each call runs in its own savepoint of the batch's transaction; each
        # changes every chain's row, on pages that existed before the
        # savepoint, so SQLite keeps their former images in a journal: past
        # 64 KiB it went to a temp file on disk.
        return await asyncio.gather(*(uow.atomically(append_to_all) for _ in range(3)))

    try:
        asyncio.run(uow.atomically(append_to_all))  # the chains exist beforehand
        seen = asyncio.run(batch())
    finally:
        uow.close()
    assert seen == [[], [], []]
