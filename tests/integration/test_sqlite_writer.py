"""SQLite's writer (store/writer.py): statements on the event loop, commits on
a thread, the lock of another process writing awaited on that thread, and
everything that cannot go that way (a database held outside eid, a second
event loop, long transactions) handed to the writer thread, without
blocking the loop and without losing or doubling a write."""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from eid_service.domain.citizen import Demographics
from eid_service.store import writer
from eid_service.store.database import create_engine, sqlite_path
from eid_service.store.uow import SqlUnitOfWork
from eid_service.use_cases.ports import Repositories
from tests.integration.test_store import _citizens, _new_uow


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "eid.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def uow(sqlite_url: str) -> Iterator[SqlUnitOfWork]:
    made = _new_uow(sqlite_url)
    try:
        yield made
    finally:
        made.close()


def _stored(uow: SqlUnitOfWork, citizens: list[Demographics]) -> list[bool]:
    return asyncio.run(
        uow.read(lambda r: [r.registry.find(c.personal_id) is not None for c in citizens])
    )


async def _write(uow: SqlUnitOfWork, citizen: Demographics) -> None:
    await uow.atomically(lambda r: r.registry.put(citizen))


async def _write_all(uow: SqlUnitOfWork, citizens: list[Demographics]) -> None:
    await asyncio.gather(*(_write(uow, c) for c in citizens))


async def _ticks_while(write: asyncio.Future[object], release: threading.Event) -> int:
    """Counts the event loop's turns while `write` waits, then lets it go."""
    ticks = 0
    while ticks < 50:
        await asyncio.sleep(0)
        ticks += 1
    assert not write.done()  # still waiting for its turn
    release.set()
    await write
    return ticks


async def _write_while_held(
    uow: SqlUnitOfWork, citizen: Demographics, let_go: Callable[[], object]
) -> bool:
    """Writes `citizen` while something else holds the database, which
    `let_go` releases (from another thread, once the loop has shown it still
    turns); True once the write has landed."""
    release = threading.Event()

    def when_told() -> None:
        release.wait(10)
        let_go()

    holder = threading.Thread(target=when_told)
    holder.start()
    write: asyncio.Future[object] = asyncio.ensure_future(_write(uow, citizen))
    try:
        return await _ticks_while(write, release) == 50
    finally:
        holder.join()


def test_a_write_waits_for_another_process_without_blocking_the_loop(
    uow: SqlUnitOfWork, sqlite_url: str
) -> None:
    """Another process holds the write lock: the write waits for it off the
    loop, the event loop keeps serving, and the write lands afterwards."""
    citizen = _citizens(1)[0]
    fd = os.open(sqlite_path(sqlite_url) + ".writelock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as another eid process mid-commit
    try:
        assert asyncio.run(_write_while_held(uow, citizen, lambda: fcntl.flock(fd, fcntl.LOCK_UN)))
    finally:
        os.close(fd)
    assert _stored(uow, [citizen]) == [True]


def test_a_batch_that_waited_for_another_process_runs_on_the_loop(
    uow: SqlUnitOfWork, sqlite_url: str
) -> None:
    """While another process writes, calls queue up; once its lock is free
    they run together, on the event loop's thread (no GIL hand-over per
    statement on a writer thread), in one commit."""
    citizens = _citizens(2)
    fd = os.open(sqlite_path(sqlite_url) + ".writelock", os.O_RDWR | os.O_CREAT, 0o600)

    async def scenario() -> tuple[int, set[int], int]:
        ran_on: set[int] = set()

        def put(citizen: Demographics) -> Callable[[Repositories], None]:
            def work(r: Repositories) -> None:
                ran_on.add(threading.get_ident())
                r.registry.put(citizen)

            return work

        await uow.atomically(put(_citizens(3)[2]))  # the loop path is this loop's
        ran_on.clear()
        before = uow.group_commits
        fcntl.flock(fd, fcntl.LOCK_EX)  # as another eid process mid-commit
        writes = [asyncio.ensure_future(uow.atomically(put(c))) for c in citizens]
        for _ in range(50):
            await asyncio.sleep(0)  # the loop turns while they wait
        assert not any(w.done() for w in writes) and not ran_on
        fcntl.flock(fd, fcntl.LOCK_UN)
        await asyncio.gather(*writes)
        return threading.get_ident(), ran_on, uow.group_commits - before

    try:
        loop_thread, ran_on, commits = asyncio.run(scenario())
    finally:
        os.close(fd)
    assert ran_on == {loop_thread}
    assert commits == 1
    assert _stored(uow, citizens) == [True, True]


def _lock_is_free(sqlite_url: str, within: float = 5.0) -> bool:
    """Whether another process could take the write lock within `within` s."""
    fd = os.open(sqlite_path(sqlite_url) + ".writelock", os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + within
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.02)
    finally:
        os.close(fd)


def test_a_caller_giving_up_while_its_batch_waits_leaves_no_lock_behind(
    uow: SqlUnitOfWork, sqlite_url: str
) -> None:
    """A command's loop ends (its write timed out) while the batch waits for
    another process: once that process lets go, the lock is free for anyone,
    not kept for a loop that is gone."""
    fd = os.open(sqlite_path(sqlite_url) + ".writelock", os.O_RDWR | os.O_CREAT, 0o600)

    async def give_up() -> None:
        await uow.atomically(lambda r: r.registry.put(_citizens(2)[1]))  # this loop's path
        fcntl.flock(fd, fcntl.LOCK_EX)  # another process starts writing
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(_write(uow, _citizens(1)[0]), 0.1)

    try:
        asyncio.run(give_up())
    finally:
        os.close(fd)  # the other process is done
    assert _lock_is_free(sqlite_url)


def test_closing_while_a_batch_waits_for_another_process_does_not_wait_for_it(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server closes while another process holds the lock for long (a
    bulk load): the waiting write is refused (STORE_UNAVAILABLE) and closing
    returns after its own grace, not when the other process lets go. Shown
    by order: the other process lets go only once the test is done (or, if
    closing waits for it, after 30 s), not by timing closing."""
    monkeypatch.setattr(writer, "CLOSE_WAIT_SECONDS", 0.5)
    uow = _new_uow(sqlite_url)
    fd = os.open(sqlite_path(sqlite_url) + ".writelock", os.O_RDWR | os.O_CREAT, 0o600)
    let_go = threading.Event()

    def other_process_done() -> None:
        let_go.set()
        fcntl.flock(fd, fcntl.LOCK_UN)

    # Only for a closing that waits for the lock: the test ends, and fails.
    released = threading.Timer(30.0, other_process_done)

    async def scenario() -> tuple[bool, str]:
        await uow.atomically(lambda r: r.registry.put(_citizens(2)[1]))  # this loop's path
        fcntl.flock(fd, fcntl.LOCK_EX)
        released.start()
        waiting = asyncio.ensure_future(_write(uow, _citizens(1)[0]))
        await asyncio.sleep(0.05)
        await asyncio.to_thread(uow.close)
        try:
            await asyncio.wait_for(waiting, 10)
            answer = "written"
        except Exception as refused:
            answer = getattr(refused, "reason", type(refused).__name__)
        return not let_go.is_set(), answer

    try:
        while_held, answer = asyncio.run(scenario())
    finally:
        released.cancel()
        released.join()
        os.close(fd)
    assert while_held, "closing or the refusal waited for the other process"
    assert answer == "STORE_UNAVAILABLE"


def test_a_database_held_outside_eid_is_waited_for_off_the_loop(
    uow: SqlUnitOfWork, sqlite_url: str
) -> None:
    """A connection that is not eid's (an operator's shell) holds the write
    lock: the write is handed to the writer thread, which waits its busy
    timeout; the loop keeps serving meanwhile."""
    citizen = _citizens(1)[0]
    path = sqlite_path(sqlite_url)
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        assert asyncio.run(_write_while_held(uow, citizen, lambda: blocker.execute("ROLLBACK")))
    finally:
        blocker.close()
    assert _stored(uow, [citizen]) == [True]


def test_two_writers_on_one_file_take_turns(sqlite_url: str) -> None:
    """Two processes' writers (two units of work here, each with its own lock
    descriptor) writing at once: every write lands once."""
    first = _new_uow(sqlite_url)
    second = SqlUnitOfWork(sqlite_url, first.protection)  # the same keys
    citizens = _citizens(120)

    async def both() -> None:
        await asyncio.gather(_write_all(first, citizens[::2]), _write_all(second, citizens[1::2]))

    try:
        asyncio.run(both())
        assert _stored(first, citizens) == [True] * len(citizens)
        # Both went the fast way when the other was not writing, and waited
        # on their thread when it was.
        assert first.group_commits > 0 and second.group_commits > 0
    finally:
        first.close()
        second.close()


def test_a_second_event_loop_writes_through_the_writer_thread(uow: SqlUnitOfWork) -> None:
    """The loop that wrote first owns the loop path; another thread's loop
    writing at the same time is served by the writer thread."""
    citizens = _citizens(80)
    failures: list[BaseException] = []

    def other_loop() -> None:
        try:
            asyncio.run(_write_all(uow, citizens[40:]))
        except BaseException as error:  # reported below
            failures.append(error)

    async def main() -> None:
        await uow.atomically(lambda r: r.registry.put(citizens[0]))  # owns the loop path
        thread = threading.Thread(target=other_loop)
        thread.start()
        await _write_all(uow, citizens[1:40])
        await asyncio.to_thread(thread.join)

    asyncio.run(main())
    assert failures == []
    assert _stored(uow, citizens) == [True] * len(citizens)


def test_a_new_event_loop_takes_over_after_the_first_closed(uow: SqlUnitOfWork) -> None:
    """A command that runs asyncio.run twice writes in both."""
    citizens = _citizens(20)
    asyncio.run(_write_all(uow, citizens[:10]))
    asyncio.run(_write_all(uow, citizens[10:]))
    assert _stored(uow, citizens) == [True] * len(citizens)
    assert 0 < uow.group_commits <= len(citizens)


def test_a_long_transaction_runs_off_the_loop(uow: SqlUnitOfWork) -> None:
    """A bulk load or sweep (`long`) holds the writer, not the event loop:
    other work keeps being served while it runs."""
    citizen = _citizens(1)[0]
    release = threading.Event()

    def bulk(r: Repositories) -> None:
        release.wait(10)  # as a long load would take its time
        r.registry.put(citizen)

    async def scenario() -> int:
        write: asyncio.Future[object] = asyncio.ensure_future(uow.atomically(bulk, long=True))
        return await _ticks_while(write, release)

    assert asyncio.run(scenario()) == 50
    assert _stored(uow, [citizen]) == [True]


def test_closing_answers_what_was_begun_and_refuses_the_rest(sqlite_url: str) -> None:
    """The server closes its store from another thread while its loop still
    serves: writes already queued are committed and answered, later ones are
    refused (STORE_UNAVAILABLE), and the write lock is free afterwards."""
    uow = _new_uow(sqlite_url)
    citizens = _citizens(40)

    async def scenario() -> tuple[list[BaseException | None], str]:
        queued = [asyncio.ensure_future(_write(uow, c)) for c in citizens]
        await asyncio.sleep(0)  # they are queued, the first batch has begun
        await asyncio.to_thread(uow.close)
        answers = await asyncio.gather(*queued, return_exceptions=True)
        try:
            await _write(uow, _citizens(41)[-1])
            late = "written"
        except Exception as refused:
            late = getattr(refused, "reason", type(refused).__name__)
        return answers, late

    answers, late = asyncio.run(scenario())
    assert answers == [None] * len(citizens)
    assert late == "STORE_UNAVAILABLE"
    fd = os.open(sqlite_path(sqlite_url) + ".writelock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if still held
    finally:
        os.close(fd)
    reopened = SqlUnitOfWork(sqlite_url, uow.protection)
    try:
        assert _stored(reopened, citizens) == [True] * len(citizens)
    finally:
        reopened.close()


def test_loops_taking_over_at_once_each_write_once(uow: SqlUnitOfWork) -> None:
    """After the owning loop closed, two threads' loops write at the same
    time: one takes the loop path over, the other is served by the writer
    thread; every write lands once and nobody's work is lost."""
    citizens = _citizens(60)
    asyncio.run(_write_all(uow, citizens[:1]))  # this loop owned it, and closed
    failures: list[BaseException] = []
    go = threading.Barrier(2)

    def writer(part: list[Demographics]) -> None:
        try:
            go.wait(10)
            asyncio.run(_write_all(uow, part))
        except BaseException as error:  # reported below
            failures.append(error)

    threads = [
        threading.Thread(target=writer, args=(citizens[1:30],)),
        threading.Thread(target=writer, args=(citizens[30:],)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []
    assert _stored(uow, citizens) == [True] * len(citizens)


def test_a_lock_file_that_cannot_be_opened_fails_the_write_and_the_next(
    sqlite_url: str, tmp_path: Path
) -> None:
    """A write that cannot take the lock (its file cannot be opened) is
    answered with the error, and so is the next one: nothing hangs."""
    uow = SqlUnitOfWork(sqlite_url, _new_uow(sqlite_url).protection)
    # The lock file's directory is gone (as a deployment could get it wrong).
    uow_writer: Any = uow._writer
    uow_writer._lock_path = str(tmp_path / "missing" / "eid.db.writelock")
    citizen = _citizens(1)[0]

    async def twice() -> list[str]:
        outcomes = []
        for _ in range(2):
            try:
                await asyncio.wait_for(_write(uow, citizen), 10)
                outcomes.append("written")
            except TimeoutError:
                outcomes.append("hung")
            except OSError as error:
                outcomes.append(type(error).__name__)
        return outcomes

    try:
        assert asyncio.run(twice()) == ["FileNotFoundError", "FileNotFoundError"]
    finally:
        uow.close()


def test_a_commit_that_fails_fails_its_whole_batch_and_the_next_one_commits(
    tmp_path: Path,
) -> None:
    """The COMMIT itself fails (here a deferred foreign key, checked only
    then; in life an I/O error): every caller of that batch hears the error,
    none of its rows is kept, the write lock is free again, and the next
    batch commits as usual."""
    engine = create_engine(f"sqlite:///{tmp_path / 'commit.db'}")
    with engine.connect() as setup:
        raw: Any = setup.connection.driver_connection
        raw.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        raw.execute(
            "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER"
            " REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
        )
    lock_path = str(tmp_path / "commit.db.writelock")
    sqlite_writer = writer.SqliteWriter(engine, lock_path)

    def insert(parent_id: int) -> Callable[[Any], None]:
        def work(connection: Any) -> None:
            connection.connection.driver_connection.execute(
                "INSERT INTO child (parent_id) VALUES (?)", (parent_id,)
            )

        return work

    def orphan(connection: Any) -> None:
        connection.connection.driver_connection.execute(
            "INSERT INTO child (parent_id) VALUES (99)"  # no such parent: the COMMIT refuses
        )

    def parent(connection: Any) -> None:
        connection.connection.driver_connection.execute("INSERT INTO parent (id) VALUES (1)")

    def lock_is_free() -> bool:
        """As another process would see it (a descriptor of its own)."""
        fd = os.open(lock_path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            os.close(fd)  # lets go of it, if it was taken
        return True

    async def scenario() -> tuple[list[str], bool, list[str]]:
        await sqlite_writer.run(parent)  # this loop owns the loop path
        # Queued together, so they share one batch and its failing COMMIT;
        # answered within 10 s, or the failure was never reported.
        first = await asyncio.wait_for(
            asyncio.gather(
                sqlite_writer.run(insert(1)),
                sqlite_writer.run(orphan),
                sqlite_writer.run(insert(1)),
                return_exceptions=True,
            ),
            10,
        )
        freed = lock_is_free()  # before the next batch takes and frees it again
        second = await asyncio.wait_for(
            asyncio.gather(
                sqlite_writer.run(insert(1)), sqlite_writer.run(insert(1)), return_exceptions=True
            ),
            10,
        )
        return [type(a).__name__ for a in first], freed, [type(a).__name__ for a in second]

    try:
        first, freed, second = asyncio.run(scenario())
    finally:
        sqlite_writer.close()
    assert first == ["IntegrityError"] * 3
    assert freed
    assert second == ["NoneType", "NoneType"]
    check = sqlite3.connect(tmp_path / "commit.db")
    try:
        assert check.execute("SELECT count(*) FROM child").fetchone() == (2,)
    finally:
        check.close()
    engine.dispose()
