"""The SQLite writer's commit thread (store/writer.py `_Committer`): each
COMMIT is run off the event loop and reported back on it once; once closed
it refuses work instead of leaving a caller waiting, and leaves no thread."""

from __future__ import annotations

import asyncio
import threading

import pytest

from eid_service.store.writer import _Committer


class _Connection:
    """Stands in for a sqlite3 connection: records the statements, and can fail COMMIT."""

    def __init__(self, fail: bool = False) -> None:
        self.statements: list[str] = []
        self.threads: set[str] = set()
        self._fail = fail

    def execute(self, statement: str) -> None:
        self.statements.append(statement)
        self.threads.add(threading.current_thread().name)
        if statement == "COMMIT" and self._fail:
            raise OSError("disk I/O error")


def _committer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "db-commit"]


def test_a_commit_runs_off_the_loop_and_is_reported_on_it_once() -> None:
    committer = _Committer()

    async def commit(connection: _Connection) -> list[tuple[BaseException | None, bool]]:
        loop = asyncio.get_running_loop()
        loop_thread = threading.get_ident()
        heard: list[tuple[BaseException | None, bool]] = []
        done = asyncio.Event()

        def then(error: BaseException | None) -> None:
            heard.append((error, threading.get_ident() == loop_thread))
            done.set()

        committer.commit(connection, loop, then)
        await asyncio.wait_for(done.wait(), 10)
        await asyncio.sleep(0.05)  # a second report would come by now
        return heard

    try:
        good, bad = _Connection(), _Connection(fail=True)
        assert asyncio.run(commit(good)) == [(None, True)]
        assert good.statements == ["COMMIT"] and good.threads == {"db-commit"}
        [(error, on_loop)] = asyncio.run(commit(bad))
        assert isinstance(error, OSError) and on_loop
        assert bad.statements == ["COMMIT", "ROLLBACK"]  # nothing of the batch is kept
    finally:
        committer.close()


def test_once_closed_it_refuses_commits_and_leaves_no_thread() -> None:
    committer = _Committer()

    async def commit_once() -> None:
        done = asyncio.Event()
        committer.commit(_Connection(), asyncio.get_running_loop(), lambda _: done.set())
        await asyncio.wait_for(done.wait(), 10)

    asyncio.run(commit_once())
    assert len(_committer_threads()) == 1
    committer.close()
    assert _committer_threads() == []
    # Refused at once (the writer fails that batch's callers), never queued
    # behind a thread that is gone; a drain has nothing to wait for.
    with pytest.raises(RuntimeError):
        asyncio.run(commit_once())
    committer.drain()
    assert _committer_threads() == []


def test_drain_waits_for_the_commits_asked_before_it() -> None:
    committer = _Committer()
    release = threading.Event()

    class _SlowConnection(_Connection):
        def execute(self, statement: str) -> None:
            release.wait(10)  # as a long fsync
            super().execute(statement)

    connection = _SlowConnection()

    async def scenario() -> bool:
        committer.commit(connection, asyncio.get_running_loop(), lambda _: None)
        drained = asyncio.ensure_future(asyncio.to_thread(committer.drain))
        await asyncio.sleep(0.1)
        waited = not drained.done()
        release.set()
        await asyncio.wait_for(drained, 10)
        return waited

    try:
        assert asyncio.run(scenario())
        assert connection.statements == ["COMMIT"]
    finally:
        committer.close()
