"""The store on each backend: migrations round-trip and match the models, and a
transaction keeps nothing unless it completes, alone or in a group commit."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect

from eid_service.domain.citizen import Demographics, Gender
from eid_service.domain.party_limits import TokenBucket
from eid_service.domain.personal_id import make_personal_id
from eid_service.security.field_cipher import FieldCipher
from eid_service.security.keyed_hash import KeyedHasher
from eid_service.security.keys import generate_key_ring
from eid_service.store import database
from eid_service.store.database import create_engine, sqlite_path, store_error
from eid_service.store.migrate import alembic_config, upgrade
from eid_service.store.models import Base
from eid_service.store.protection import DataProtection
from eid_service.store.uow import SqlUnitOfWork
from eid_service.use_cases.ports import Repositories

BORN = date(1991, 2, 3)
CITIZEN = Demographics(
    make_personal_id("079", BORN, Gender.FEMALE, 4242).value, "Đặng Thu Trang", BORN, Gender.FEMALE
)


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _schema_diff(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return _diff(connection)
    finally:
        engine.dispose()


def _table_names(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        return inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_migrations_build_the_schema_from_scratch(empty_database_url: str) -> None:
    # Other tests copy a database migrated once per session; this one runs them all.
    assert _table_names(empty_database_url) == []
    upgrade(empty_database_url)
    assert _schema_diff(empty_database_url) == []
    assert "alembic_version" in _table_names(empty_database_url)


def test_migrations_match_the_models_and_downgrade_cleanly(database_url: str) -> None:
    assert _schema_diff(database_url) == []
    cfg = alembic_config(database_url)
    command.downgrade(cfg, "base")
    command.upgrade(cfg, "head")
    assert _schema_diff(database_url) == []


def _new_uow(url: str) -> SqlUnitOfWork:
    ring = generate_key_ring()
    return SqlUnitOfWork(url, DataProtection(FieldCipher(ring), KeyedHasher(ring.hmac_key)))


class Refused(Exception):
    pass


async def _uow_round_trip(uow: SqlUnitOfWork) -> tuple[Demographics | None, Demographics | None]:
    def put_then_fail(r: Repositories) -> None:
        r.registry.put(CITIZEN)
        raise Refused

    with pytest.raises(Refused):
        await uow.atomically(put_then_fail)
    uncommitted = await uow.read(lambda r: r.registry.find(CITIZEN.personal_id))
    await uow.atomically(lambda r: r.registry.put(CITIZEN))
    committed = await uow.read(lambda r: r.registry.find(CITIZEN.personal_id))
    return uncommitted, committed


def test_a_transaction_that_raises_keeps_nothing(database_url: str) -> None:
    uow = _new_uow(database_url)
    try:
        uncommitted, committed = asyncio.run(_uow_round_trip(uow))
    finally:
        uow.close()
    assert uncommitted is None
    assert committed == CITIZEN


def _citizens(count: int) -> list[Demographics]:
    return [
        Demographics(
            make_personal_id("001", BORN, Gender.MALE, serial).value,
            "Lê Văn Nam",
            BORN,
            Gender.MALE,
        )
        for serial in range(count)
    ]


async def _concurrent_writes(uow: SqlUnitOfWork, citizens: list[Demographics]) -> list[str]:
    def put(citizen: Demographics, r: Repositories) -> str:
        r.registry.put(citizen)
        if citizen.personal_id.endswith("3"):
            raise Refused  # this one alone is rolled back
        return citizen.personal_id

    async def one(citizen: Demographics) -> str:
        try:
            return await uow.atomically(lambda r: put(citizen, r))
        except Refused:
            return "refused"

    return await asyncio.gather(*(one(c) for c in citizens))


def test_concurrent_transactions_commit_each_alone_or_in_groups(database_url: str) -> None:
    """On SQLite concurrent transactions share durable commits (group commit):
    a failing one is rolled back alone, the others are all there."""
    citizens = _citizens(64)
    uow = _new_uow(database_url)
    try:
        answers = asyncio.run(_concurrent_writes(uow, citizens))
        stored = asyncio.run(
            uow.read(lambda r: [r.registry.find(c.personal_id) is not None for c in citizens])
        )
        commits = uow.group_commits
    finally:
        uow.close()
    refused = [c.personal_id.endswith("3") for c in citizens]
    assert answers == [
        "refused" if no else c.personal_id for c, no in zip(citizens, refused, strict=True)
    ]
    assert stored == [not no for no in refused]
    if database_url.startswith("sqlite"):
        assert 0 < commits < len(citizens)


async def _write_while_locked(uow: SqlUnitOfWork, path: str) -> tuple[str, bool]:
    import sqlite3

    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # e.g. an operator's shell left open
    try:
        await uow.atomically(lambda r: r.registry.put(CITIZEN))
        first = "written"
    except Exception as busy:
        first = type(store_error(busy)).__name__
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    await uow.atomically(lambda r: r.registry.put(CITIZEN))
    return first, await uow.read(lambda r: r.registry.find(CITIZEN.personal_id)) == CITIZEN


def test_the_sqlite_writer_survives_a_busy_database(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that cannot start is answered UNAVAILABLE (STORE_BUSY), and
    writes work again once the database is free: the writer thread lives on."""
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's single writer only")
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_MS", 200)
    uow = _new_uow(database_url)
    try:
        first, then = asyncio.run(_write_while_locked(uow, sqlite_path(database_url)))
    finally:
        uow.close()
    assert first == "Unavailable"
    assert then is True


def store_outcome(error: Exception) -> str:
    """The reason a client is given, or the exception's type if it is a defect (INTERNAL)."""
    mapped = store_error(error)
    return type(error).__name__ if mapped is None else mapped.reason


async def _take_both(uow: SqlUnitOfWork, held: TokenBucket, free: TokenBucket) -> list[str]:
    """A token from each bucket at once; how each write ended."""
    now = datetime.now(UTC)

    async def take(bucket: TokenBucket) -> str:
        try:
            await asyncio.wait_for(
                uow.atomically(lambda r: r.rate_buckets.take([bucket], now)), timeout=10
            )
        except TimeoutError:
            return "still waiting after 10 s"
        except Exception as error:
            return store_outcome(error)
        return "committed"

    return list(await asyncio.gather(take(held), take(free)))


def test_a_row_held_outside_eid_fails_the_write_that_waits_for_it_as_store_busy(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator's open transaction holding a row: the write that needs it
    fails as STORE_BUSY after the lock timeout (before, it and its writer
    thread waited for as long as the row was held); other writes commit."""
    if not database_url.startswith("postgresql"):
        pytest.skip(
            "PostgreSQL's row locks (SQLite: test_the_sqlite_writer_survives_a_busy_database)"
        )
    import psycopg

    monkeypatch.setattr(database, "POSTGRES_LOCK_TIMEOUT_MS", 300)
    uow = _new_uow(database_url)
    held, free = (TokenBucket(key, 600, "TEST_LIMITED") for key in ("held", "free"))
    try:
        asyncio.run(uow.atomically(lambda r: r.rate_buckets.take([held], datetime.now(UTC))))
        dsn = database_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn) as operator:
            operator.execute("SELECT key FROM token_buckets FOR UPDATE")  # left open
            answers = asyncio.run(_take_both(uow, held, free))
            operator.rollback()
        after = asyncio.run(_take_both(uow, held, free))
    finally:
        uow.close()
    assert answers == ["STORE_BUSY", "committed"]
    assert after == ["committed", "committed"]
