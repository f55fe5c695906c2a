"""SQLite's write path: one writer thread per process, and group commit.

SQLite has one writer at a time, and every durable commit costs an fsync.
Rather than make each call wait for its own, the writer thread takes every
transaction function queued since its last commit, runs each inside a
SAVEPOINT (a failing one is rolled back alone), commits them together, and
only then answers their callers: each acknowledged write is durable, and one
flush serves the whole batch. The answers of a batch go back to the event
loop in one wake-up.

Several server processes may share the database file. They take turns with
an exclusive `flock` on a lock file beside it (`lock_path`), held from BEGIN
IMMEDIATE to COMMIT: a blocked writer sleeps in the kernel and wakes when the
lock is released, instead of polling in SQLite's busy handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine

log = logging.getLogger("eid.store")

# Enough to amortise one fsync over a burst, few enough that the first
# caller of a batch does not wait long for the last.
MAX_BATCH = 64


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
    """Runs transaction functions on one connection, committing in groups."""

    def __init__(self, engine: Engine, lock_path: str | None = None) -> None:
        self._engine = engine
        self._lock_path = lock_path
        self._queue: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="db-writer", daemon=True)
        self._started = False
        self._start_lock = threading.Lock()
        self.batches = 0  # commits made, for tests and the bench

    async def run(self, work: Callable[[Connection], Any]) -> Any:
        self._ensure_started()
        loop = asyncio.get_running_loop()
        job = _Job(work, loop, loop.create_future())
        self._queue.put(job)
        return await job.future

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
