"""SQLite's write path: group commit, with the statements on the event loop.

SQLite has one writer at a time, and every durable commit costs an fsync.
Rather than make each call wait for its own, the writer takes every
transaction function queued since its last commit, runs each inside a
SAVEPOINT (a failing one is rolled back alone), commits them together, and
only then answers their callers: each acknowledged write is durable, and one
flush serves the whole batch.

Where the statements run (measured, `make bench`): a transaction's
statements are short, and each one a thread runs hands the GIL back and
forth with the event loop, which cost a token Verify about a fifth of its
throughput. So `SqliteWriter` runs them on the event loop's own thread and
sends only the COMMIT (the fsync, which releases the GIL) to a thread; the
calls that arrive meanwhile form the next batch. When another eid process
is writing, a daemon thread tells the loop once the processes' lock (below)
is free, and the batch runs on the loop as usual: with 2 workers on one file
that is most batches, which on a thread would hand the GIL over at every
statement again. A batch a connection outside eid holds the database from
goes to `BatchWriter`, a writer thread that waits for its turn without
blocking the loop, as do calls from any other event loop and `long`
transactions (bulk loads, sweeps), which would keep the loop from serving.

Several server processes may share the database file. They take turns with
an exclusive `flock` on a lock file beside it (`lock_path`), held from BEGIN
IMMEDIATE to COMMIT: a blocked writer sleeps in the kernel and wakes when the
lock is released, instead of polling in SQLite's busy handler.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import Connection, Engine

from eid_service.store.database import store_unavailable

log = logging.getLogger("eid.store")

# Enough to amortise one fsync over a burst, few enough that the first
# caller of a batch does not wait long for the last. Smaller caps cost more
# than they give: with 32 token Verify calls in flight (batches of 15 to 21 at
# the median, fsync 0.13 ms), a cap of 8 narrowed latencies (p1 17-19 ms
# against 7-8, p99 33-36 against 35-40) but served 10% fewer calls, and 4
# served 21% fewer (each commit writes every page its batch touched to the
# WAL, so the pages calls share are written once per batch, not per call).
MAX_BATCH = 64
# How long closing waits for the loop path to answer what it has begun.
CLOSE_WAIT_SECONDS = 30


@dataclass
class _Job:
    work: Callable[[Connection], Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    ok: bool = False
    value: Any = None


_STOP = object()


def _settle(jobs: list[_Job]) -> None:
    """On the event loop: answer each caller still waiting."""
    for job in jobs:
        if job.future.done():  # the caller gave up meanwhile
            continue
        if job.ok:
            job.future.set_result(job.value)
        else:
            job.future.set_exception(job.value)


class BatchWriter:
    """Runs transaction functions on one connection of its own thread,
    committing in groups: `SqliteWriter`'s way for what must not run on the
    event loop."""

    def __init__(self, engine: Engine, lock_path: str | None = None) -> None:
        self._engine = engine
        self._lock_path = lock_path
        self._queue: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="db-writer", daemon=True)
        self._started = False
        self._start_lock = threading.Lock()
        self.batches = 0  # commits made, for tests and the bench

    def submit(self, job: _Job) -> None:
        """Queues `job`; its future is answered on its loop."""
        self._ensure_started()
        self._queue.put(job)

    def close(self) -> None:
        if self._started:
            self._queue.put(_STOP)
            self._thread.join(10)

    def _ensure_started(self) -> None:
        if not self._started:
            with self._start_lock:
                if not self._started:
                    self._thread.start()
                    self._started = True

    def _run(self) -> None:
        lock_fd = None
        if self._lock_path is not None:
            lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        connection: Connection | None = None
        try:
            while True:
                first = self._queue.get()
                if first is _STOP:
                    return
                jobs = [first]
                while len(jobs) < MAX_BATCH:
                    try:
                        jobs.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                stop = any(job is _STOP for job in jobs)
                connection = self._commit_batch(
                    connection, lock_fd, [j for j in jobs if j is not _STOP]
                )
                if stop:
                    return
        finally:
            if connection is not None:
                connection.close()
            if lock_fd is not None:
                os.close(lock_fd)

    def _commit_batch(
        self, connection: Connection | None, lock_fd: int | None, queued: list[Any]
    ) -> Connection | None:
        """Commits one batch; returns the connection to use next (None after a
        failure, so the next batch starts on a fresh one). Whatever fails, the
        thread lives on and every caller of the batch hears why."""
        # A caller that gave up (cancelled, deadline) before its turn is
        # skipped: nothing of it is written.
        jobs: list[_Job] = [j for j in queued if not j.future.done()]
        if not jobs:
            return connection
        if lock_fd is not None:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
        try:
            if connection is None:
                connection = self._engine.connect()
            raw: Any = connection.connection.driver_connection
            # On the driver, like the savepoints: SQLAlchemy's begin and commit
            # (and its BEGIN event) cost more than a small batch's statements.
            # Repositories run their SQL on the driver too, so SQLAlchemy never
            # starts a transaction of its own on this connection.
            raw.execute("BEGIN IMMEDIATE")
            try:
                for job in jobs:
                    self._run_job(connection, raw, job)
                raw.execute("COMMIT")
                self.batches += 1
            except BaseException:
                with contextlib.suppress(Exception):
                    raw.execute("ROLLBACK")
                raise
        except Exception as error:  # BEGIN, a savepoint or COMMIT failed: nothing is kept
            log.warning("write batch failed: %s", type(error).__name__)
            for job in jobs:
                job.ok, job.value = False, error
            if connection is not None:
                with contextlib.suppress(Exception):
                    connection.close()
            connection = None
        finally:
            if lock_fd is not None:
                fcntl.flock(lock_fd, fcntl.LOCK_UN)
        by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        for job in jobs:
            by_loop.setdefault(job.loop, []).append(job)
        for loop, answered in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop has closed
                loop.call_soon_threadsafe(_settle, answered)
        return connection

    @staticmethod
    def _run_job(connection: Connection, raw: Any, job: _Job) -> None:
        # Savepoints on the driver directly: SQLAlchemy's cost more than the job.
        raw.execute("SAVEPOINT job")
        try:
            job.value = job.work(connection)
            job.ok = True
        except Exception as error:
            raw.execute("ROLLBACK TO job")
            job.ok, job.value = False, error
        raw.execute("RELEASE job")


def _busy(error: BaseException) -> bool:
    """SQLITE_BUSY, as database.store_error recognises it."""
    return isinstance(error, sqlite3.OperationalError) and "database is locked" in str(error)


def _commit(raw: Any) -> None:
    """On the commit thread: the fsync releases the GIL."""
    try:
        raw.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(Exception):
            raw.execute("ROLLBACK")
        raise


# A commit asked of the commit thread: the connection, and what to call on
# which loop afterwards (with the error, if it failed).
_Commit = tuple[Any, asyncio.AbstractEventLoop, Callable[[BaseException | None], None]]


class _Committer:
    """The thread that commits the loop path's batches, and tells the loop.

    Not an executor: run_in_executor wraps each commit in two futures and
    chains them across threads. Queueing the connection and being called
    back once cost the loop 73 to 101 µs of CPU per write in batches of 3,
    against 122 to 130 (a writer alone, 3 writes in flight; the bench's token
    Verify committed batches of 2 to 4 at the median on that machine, and of
    15 to 21 on one whose fsync takes 0.13 ms). Like an executor, it
    refuses work once closed. A daemon, like the writer's other threads (an
    executor's thread was joined at exit): a COMMIT cut short at exit is
    rolled back whole by SQLite, and answered nobody."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[_Commit | threading.Event | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        # Closing and queueing take turns, so nothing is queued behind the
        # thread's last item (it would never be answered).
        self._lock = threading.Lock()
        self._closed = False

    def commit(
        self,
        raw: Any,
        loop: asyncio.AbstractEventLoop,
        then: Callable[[BaseException | None], None],
    ) -> None:
        """Commits on the thread, then calls `then(error)` on `loop`;
        RuntimeError once closed."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the commit thread is closed")
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="db-commit", daemon=True)
                self._thread.start()
            self._queue.put((raw, loop, then))

    def drain(self) -> None:
        """Returns once every commit asked for so far has ended."""
        with self._lock:
            if self._closed or self._thread is None or not self._thread.is_alive():
                return
            done = threading.Event()
            self._queue.put(done)
        done.wait()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
            if thread is not None:
                self._queue.put(None)
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if isinstance(item, threading.Event):
                item.set()
                continue
            raw, loop, then = item
            error: BaseException | None = None
            try:
                _commit(raw)
            except BaseException as failed:  # told to the loop, which fails the batch
                error = failed
            with contextlib.suppress(RuntimeError):  # that loop has closed
                loop.call_soon_threadsafe(then, error)
            # Not kept until the next batch: the jobs, their answers, the loop.
            del item, raw, loop, then, error


class _LockWaiter:
    """A daemon thread that tells the loop when another process has let go
    of the write lock. It takes the lock on a file descriptor of its own and
    lets go at once: nothing stays locked if the loop that asked is gone (a
    command's asyncio.run returned, the server is closing), and nothing
    waits for it at exit. The loop then takes the lock itself, and asks
    again if another process was quicker."""

    def __init__(self, lock_path: str) -> None:
        self._lock_path = lock_path
        self._requests: queue.SimpleQueue[_Wait | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def ask(
        self, loop: asyncio.AbstractEventLoop, then: Callable[[BaseException | None], None]
    ) -> None:
        """Calls `then(None)` on `loop` once the lock is free, or
        `then(error)` if it cannot be waited for. From the owning loop only."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="db-lock-wait", daemon=True)
            self._thread.start()
        self._requests.put((loop, then))

    def close(self) -> None:
        self._requests.put(None)

    def _run(self) -> None:
        while (wait := self._requests.get()) is not None:
            loop, then = wait
            error: BaseException | None = None
            try:
                fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)  # sleeps in the kernel till it is free
                finally:
                    os.close(fd)  # lets go of it at once
            except OSError as failed:
                error = failed
            with contextlib.suppress(RuntimeError):  # that loop has closed
                loop.call_soon_threadsafe(then, error)


# A wait asked for: the loop to tell, and what to call there.
_Wait = tuple[asyncio.AbstractEventLoop, Callable[[BaseException | None], None]]


class SqliteWriter:
    """Group commit with the statements on the event loop (module docstring).

    The first event loop to write owns the loop path until it closes; calls
    from other loops, and `long` transactions (bulk loads, sweeps, which
    would keep the loop from serving), go to the writer thread."""

    def __init__(self, engine: Engine, lock_path: str | None = None) -> None:
        self._engine = engine
        self._lock_path = lock_path
        self._lock_fd: int | None = None
        self._thread = BatchWriter(engine, lock_path)
        self._committer = _Committer()
        # Without a lock file (one process) there is never a wait.
        self._waiter = _LockWaiter(lock_path or "")
        self._awaiting_lock = False  # the pending batch waits for another process
        self._loop: asyncio.AbstractEventLoop | None = None
        self._owner = threading.Lock()  # one loop at a time takes the loop path over
        self._connection: Connection | None = None
        self._pending: collections.deque[_Job] = collections.deque()
        self._busy = False  # a batch is being run or committed
        self._closing = False
        self._went_idle: asyncio.Event | None = None  # set when the loop path goes idle
        self._commits = 0

    @property
    def batches(self) -> int:
        """Commits made, on the loop path and the writer thread."""
        return self._commits + self._thread.batches

    async def run(self, work: Callable[[Connection], Any], *, long: bool = False) -> Any:
        if self._closing:
            raise store_unavailable()
        loop = asyncio.get_running_loop()
        job = _Job(work, loop, loop.create_future())
        if long or not self._owned_by(loop):
            self._thread.submit(job)
        else:
            self._pending.append(job)
            if not self._busy:
                self._busy = True
                loop.call_soon(self._start)
        return await job.future

    def close(self) -> None:
        """Refuses new writes, lets the loop path answer what it has begun
        (when its loop still runs, from another thread), then stops."""
        self._closing = True
        loop = self._loop
        try:
            calling = asyncio.get_running_loop()
        except RuntimeError:
            calling = None
        if loop is not None and loop is not calling and loop.is_running():
            with contextlib.suppress(Exception):  # the loop stopped meanwhile
                asyncio.run_coroutine_threadsafe(self._idle(), loop).result(CLOSE_WAIT_SECONDS)
        self._waiter.close()
        self._thread.close()
        self._committer.close()
        self._drop()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock with it
            self._lock_fd = None

    async def _idle(self) -> None:
        if self._awaiting_lock:  # nothing of that batch has begun: refused now
            self._lock_freed(store_unavailable())
        if self._busy:
            self._went_idle = asyncio.Event()
            await self._went_idle.wait()

    def _owned_by(self, loop: asyncio.AbstractEventLoop) -> bool:
        owner = self._loop
        if owner is loop:
            return True
        if owner is not None and not owner.is_closed():
            return False
        with self._owner:
            if self._loop is not owner:  # another loop took over meanwhile
                return self._loop is loop
            # The first loop, or the one before it closed (a command that ran
            # asyncio.run twice): whatever it left unfinished is rolled back.
            self._committer.drain()
            self._drop()
            self._unlock()
            self._pending.clear()
            self._busy = False
            self._awaiting_lock = False
            self._loop = loop
            return True

    def _start(self) -> None:
        """On the owning loop: runs the next batch, then has it committed."""
        jobs: list[_Job] = []
        while self._pending and len(jobs) < MAX_BATCH:
            job = self._pending.popleft()
            if not job.future.done():  # the caller gave up before its turn
                jobs.append(job)
        if not jobs:
            self._next()
            return
        try:
            if not self._lock():
                # Another process is writing: told when its lock is free, run
                # the batch here, with whatever came meanwhile.
                self._pending.extendleft(reversed(jobs))
                assert self._loop is not None
                self._awaiting_lock = True
                self._waiter.ask(self._loop, self._lock_freed)
                return
            try:
                connection, raw = self._begin()
            except sqlite3.OperationalError as error:
                if not _busy(error):
                    raise
                self._unlock()  # a connection outside eid holds the database
                self._hand_over(jobs)
                return
            for job in jobs:
                BatchWriter._run_job(connection, raw, job)
            assert self._loop is not None
            self._committer.commit(raw, self._loop, partial(self._committed, jobs))
        except BaseException as error:  # not a job's own failure (those roll back alone)
            self._fail(jobs, error)
            if not isinstance(error, Exception):
                raise

    def _begin(self) -> tuple[Connection, Any]:
        connection = self._connection
        if connection is None:
            connection = self._connection = self._engine.connect()
            raw: Any = connection.connection.driver_connection
            # Never wait on the loop: a busy database goes to the thread.
            raw.execute("PRAGMA busy_timeout=0")
        raw = connection.connection.driver_connection
        raw.execute("BEGIN IMMEDIATE")
        return connection, raw

    def _committed(self, jobs: list[_Job], error: BaseException | None) -> None:
        if error is not None:
            self._fail(jobs, error)
            return
        self._unlock()
        self._commits += 1
        _settle(jobs)
        self._next()

    def _lock_freed(self, error: BaseException | None) -> None:
        if not self._awaiting_lock:
            return  # already refused: closing did not wait for the other process
        self._awaiting_lock = False
        if error is None and self._closing:
            error = store_unavailable()  # closing refuses what has not begun
        if error is not None:
            jobs = list(self._pending)
            self._pending.clear()
            self._fail(jobs, error)
            return
        self._start()  # takes the lock, or waits again if another was quicker

    def _hand_over(self, jobs: list[_Job]) -> None:
        for job in jobs:
            self._thread.submit(job)
        self._next()

    def _fail(self, jobs: list[_Job], error: BaseException) -> None:
        """Nothing of the batch is kept (the connection is dropped, which
        rolls back what it held, before the lock is released); every caller
        hears why, and the next batch starts on a fresh connection."""
        log.warning("write batch failed: %s", type(error).__name__)
        for job in jobs:
            job.ok, job.value = False, error
        self._drop()
        self._unlock()
        _settle(jobs)
        self._next()

    def _next(self) -> None:
        if self._pending and self._loop is not None:
            self._loop.call_soon(self._start)
        else:
            self._busy = False
            if self._went_idle is not None:
                self._went_idle.set()

    def _lock(self) -> bool:
        """Takes the processes' write lock if it is free."""
        if self._lock_path is None:
            return True
        if self._lock_fd is None:
            self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _drop(self) -> None:
        """Closes the loop path's connection (rolling back what it held); its
        busy timeout of 0 goes with it, not back to the pool."""
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.invalidate()
                self._connection.close()
            self._connection = None
