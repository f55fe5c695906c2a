"""SQLite's write path: one writer thread per process, group commit, and a
cross-process write lock that wakes the next writer at once.

SQLite has one writer at a time and every durable commit costs an fsync.
Rather than make each call wait for its own fsync, the writer thread takes
every transaction function queued since its last commit, runs each inside a
SAVEPOINT (a failing one is rolled back alone), commits them together, and
only then answers their callers: each acknowledged write is durable, and one
fsync serves the whole batch.

Several server processes may share the database file. They take turns with
an exclusive `flock` on a lock file beside it, held from BEGIN IMMEDIATE to
COMMIT: a blocked writer sleeps in the kernel and wakes when the lock is
released, instead of polling in SQLite's busy handler.
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
from concurrent.futures import Future
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
    future: Future[Any]


_STOP = object()


class SqliteWriter:
    """Runs transaction functions on one connection, committing in groups."""

    def __init__(self, engine: Engine, lock_path: str) -> None:
        self._engine = engine
        self._lock_path = lock_path
        self._queue: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="sqlite-writer", daemon=True)
        self._started = False
        self._start_lock = threading.Lock()
        self.batches = 0  # commits made, for tests and the bench

    def submit(self, work: Callable[[Connection], Any]) -> Future[Any]:
        self._ensure_started()
        job = _Job(work, Future())
        self._queue.put(job)
        return job.future

    async def run(self, work: Callable[[Connection], Any]) -> Any:
        return await asyncio.wrap_future(self.submit(work))

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
        lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        connection = self._engine.connect()
        try:
            while True:
                first = self._queue.get()
                if first is _STOP:
                    return
                jobs = [first]
                stop = False
                while len(jobs) < MAX_BATCH:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is _STOP:
                        stop = True
                        break
                    jobs.append(more)
                self._commit_batch(connection, lock_fd, [j for j in jobs if isinstance(j, _Job)])
                if stop:
                    return
        finally:
            connection.close()
            os.close(lock_fd)

    def _commit_batch(self, connection: Connection, lock_fd: int, jobs: list[_Job]) -> None:
        # A caller that gave up (cancelled, deadline) before its turn is skipped:
        # nothing of it is written.
        live = [j for j in jobs if j.future.set_running_or_notify_cancel()]
        if not live:
            return
        outcomes: list[tuple[bool, Any]] = []
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        try:
            transaction = connection.begin()
            try:
                for job in live:
                    outcomes.append(self._run_job(connection, job))
                transaction.commit()
                self.batches += 1
            except BaseException as error:
                with contextlib.suppress(Exception):
                    transaction.rollback()
                for job in live:
                    job.future.set_exception(error)
                return
        finally:
            fcntl.flock(lock_fd, fcntl.LOCK_UN)
        for job, (ok, value) in zip(live, outcomes, strict=True):
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)

    @staticmethod
    def _run_job(connection: Connection, job: _Job) -> tuple[bool, Any]:
        savepoint = connection.begin_nested()
        try:
            value = job.work(connection)
        except Exception as error:
            savepoint.rollback()
            return False, error
        savepoint.commit()
        return True, value
