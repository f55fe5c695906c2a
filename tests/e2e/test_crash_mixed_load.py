"""SIGKILL at random moments under mixed load, on SQLite and PostgreSQL:
every acknowledged write survives, nothing single-use is used twice, the
outbox loses and repeats nothing (beyond an id-carrying resend across a
kill), the audit chains verify and the SQLite file is intact.

The harness is tests/e2e/crash_harness.py, its checks crash_checks.py. The
seed is printed; EID_CRASH_SEED=<seed> replays a run's choices. `make test`
kills 5 times per database; `make soak` (EID_SOAK=1) 100 times."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.crash_checks import check_all, check_integrity, summary
from tests.e2e.crash_harness import (
    CrashPlan,
    changed_since,
    crash_run,
    source_stamps,
    sqlite_path,
)

pytestmark = pytest.mark.e2e


def _crash(tmp_path: Path, database_url: str, plan: CrashPlan) -> None:
    label = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    stamps = source_stamps()
    try:
        with crash_run(tmp_path, database_url, plan) as run:
            passed = check_all(run)
        path = sqlite_path(database_url)
        if path is not None:
            passed.append(check_integrity(run, path))
    except AssertionError as failed:
        edited = changed_since(stamps)
        if edited:
            # Not the server's fault, perhaps: say so beside the failure.
            raise AssertionError(
                f"{failed}\n(the server's code was edited during the run, so restarts ran"
                f" other code than the first start: {', '.join(edited[:10])})"
            ) from failed
        raise
    edited = changed_since(stamps)
    if edited:
        passed.append(f"NOTE: the server's code was edited during the run: {', '.join(edited)}")
    print(summary(run, label, passed))


# About 20 s per database on an idle 2-core machine; room for a busy one.
@pytest.mark.timeout(240)
def test_sigkills_under_mixed_load_lose_no_acknowledged_write(
    tmp_path: Path, database_url: str
) -> None:
    _crash(tmp_path, database_url, CrashPlan.from_env(kills=5))


@pytest.mark.soak
@pytest.mark.timeout(1500)
@pytest.mark.skipif(os.environ.get("EID_SOAK") != "1", reason="long: `make soak` runs it")
def test_a_hundred_sigkills_under_mixed_load(tmp_path: Path, database_url: str) -> None:
    plan = CrashPlan.from_env(kills=100, load_seconds=(0.05, 3.0), citizens=6000)
    _crash(tmp_path, database_url, plan)
