"""The PostgreSQL store when the database goes away and comes back, on a
cluster of the test's own (tests/private_postgres.py: the shared one is
never stopped). While it is down a transaction fails at once, as
STORE_UNAVAILABLE; once it is back the very first transaction works, even
on a pool whose connections the server ended while they sat idle."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from functools import partial

import pytest

from eid_service.domain.citizen import Demographics, Gender
from eid_service.domain.personal_id import make_personal_id
from eid_service.security.field_cipher import FieldCipher
from eid_service.security.keyed_hash import KeyedHasher
from eid_service.security.keys import generate_key_ring
from eid_service.store.migrate import upgrade
from eid_service.store.protection import DataProtection
from eid_service.store.uow import POSTGRES_WRITERS, READERS, SqlUnitOfWork
from eid_service.use_cases.ports import Repositories
from tests.integration.test_store import store_outcome
from tests.private_postgres import PrivateCluster, find_bindir

BORN = date(1988, 7, 9)
SERIALS = itertools.count(1)


def _citizen() -> Demographics:
    """A new registry entry each time."""
    pid = make_personal_id("001", BORN, Gender.FEMALE, next(SERIALS)).value
    return Demographics(pid, "Trần Thị Mai", BORN, Gender.FEMALE)


def _put(citizen: Demographics, r: Repositories) -> bool:
    return r.registry.put(citizen)


def _find(citizen: Demographics, r: Repositories) -> Demographics | None:
    return r.registry.find(citizen.personal_id)


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    bindir, why = find_bindir()
    if bindir is None:
        pytest.skip(why)
    made = PrivateCluster(bindir)
    try:
        made.init()
        made.start()
        yield made
    finally:
        made.destroy()


@pytest.fixture(scope="module")
def url(cluster: PrivateCluster) -> str:
    migrated = cluster.create_database("eid")
    upgrade(migrated)
    return migrated


@pytest.fixture
def uow(url: str) -> Iterator[SqlUnitOfWork]:
    ring = generate_key_ring()
    made = SqlUnitOfWork(url, DataProtection(FieldCipher(ring), KeyedHasher(ring.hmac_key)))
    try:
        yield made
    finally:
        made.close()


def _together(parties: int) -> Callable[[Repositories], bool]:
    """A transaction that waits for `parties - 1` others before it ends, so
    that they hold as many pooled connections at once."""
    barrier = threading.Barrier(parties, timeout=10)

    def work(r: Repositories) -> bool:
        barrier.wait()
        return r.registry.find("001188000000") is not None

    return work


async def _fill_pool(uow: SqlUnitOfWork) -> None:
    reading = _together(READERS)
    await asyncio.gather(*(uow.read(reading) for _ in range(READERS)))
    writing = _together(POSTGRES_WRITERS)
    await asyncio.gather(*(uow.atomically(writing) for _ in range(POSTGRES_WRITERS)))


async def _one_by_one(uow: SqlUnitOfWork, count: int) -> list[str]:
    """`count` writes and `count` reads, one at a time: each takes a pooled
    connection, the oldest returned first."""
    answers = []
    for _ in range(count):
        citizen = _citizen()
        try:
            await uow.atomically(partial(_put, citizen))
            found = await uow.read(partial(_find, citizen))
            answers.append("ok" if found == citizen else "missing")
        except Exception as error:
            answers.append(store_outcome(error))
    return answers


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_the_first_transaction_after_a_restart_works_on_connections_the_server_ended(
    cluster: PrivateCluster, uow: SqlUnitOfWork, mode: str
) -> None:
    asyncio.run(_fill_pool(uow))
    idle = uow.engine.pool.checkedin()  # type: ignore[attr-defined]
    assert idle >= READERS
    cluster.stop(mode)  # the server ends every session; the pool is not told
    cluster.start()
    assert asyncio.run(_one_by_one(uow, idle)) == ["ok"] * idle


async def _refused(uow: SqlUnitOfWork) -> list[tuple[str, float]]:
    citizen = _citizen()
    answers: list[tuple[str, float]] = []
    for attempt in (
        partial(uow.read, partial(_find, citizen)),
        partial(uow.atomically, partial(_put, citizen)),
    ):
        started = time.monotonic()
        try:
            await attempt()
            outcome = "ok"
        except Exception as error:
            outcome = store_outcome(error)
        answers.append((outcome, time.monotonic() - started))
    return answers


def test_while_postgres_is_down_transactions_fail_at_once_as_store_unavailable(
    cluster: PrivateCluster, uow: SqlUnitOfWork
) -> None:
    asyncio.run(_fill_pool(uow))
    cluster.stop("fast")
    try:
        refused = asyncio.run(_refused(uow))
    finally:
        cluster.start()
    assert [reason for reason, _ in refused] == ["STORE_UNAVAILABLE"] * 2
    assert max(seconds for _, seconds in refused) < 1.0
    assert asyncio.run(_one_by_one(uow, 1)) == ["ok"]
