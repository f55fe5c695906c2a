"""Supervised workers, as an operator sees them: a killed worker is replaced
and the port keeps answering; workers do not outlive their parent; a second
instance on a served port refuses to start, naming the port; a bad setting
stops the start, naming the setting."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from eid_client.client import EidClient
from eid_client.errors import EidError
from tests.e2e.conftest import BIN
from tests.e2e.served import STARTED, Served, gone, serving_env, workdir_from
from tests.polling import log_until_stopped

pytestmark = pytest.mark.e2e


@pytest.fixture
def served(tmp_path: Path, prepared: Path) -> Iterator[Served]:
    # The port's lock file in the test's folder: a SIGKILLed server leaves it behind.
    env = serving_env(EID_GRACE_SECONDS="3", TMPDIR=str(tmp_path))
    server = Served(workdir_from(prepared, tmp_path), env)
    try:
        yield server
    finally:
        server.close()


def _serve_once(
    workdir: Path, env: dict[str, str], *options: str
) -> subprocess.CompletedProcess[str]:
    """`eid-server serve` run to its end (a start that is refused)."""
    return subprocess.run(
        [str(BIN / "eid-server"), "serve", *options],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def _serve_again(served: Served, workdir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return _serve_once(workdir, {**served.env, **env}, "--workers", "1")


def _answers(target: str, times: int) -> bool:
    """`times` new connections (spread over the workers) all answer SERVING."""
    for _ in range(times):
        with EidClient(target, timeout=5) as client:
            if client.health() != "SERVING":
                return False
    return True


def test_a_killed_worker_is_replaced_and_a_second_instance_is_refused(
    served: Served, tmp_path: Path
) -> None:
    first, second = sorted(served.serving_pids(2))
    assert _answers(served.target, 4)
    port = served.target.rpartition(":")[2]

    again = _serve_again(served, tmp_path)
    assert again.returncode == 2
    assert f"port {port} is already served by another eid-server" in again.stderr
    # Another lock directory (another checkout, another version): the bind
    # without SO_REUSEPORT still finds the port in use.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probed = _serve_again(served, tmp_path, TMPDIR=str(elsewhere))
    assert probed.returncode == 2
    assert f"port {port} is already in use" in probed.stderr

    os.kill(first, signal.SIGKILL)
    served.wait_for(rf"worker \d \(pid {first}\) was killed by SIGKILL after [\d.]+ s: replacing")
    replacement = served.serving_pids(3) - {first, second}
    assert len(replacement) == 1 and gone(first) and not gone(second)
    assert _answers(served.target, 6)

    # Dying young again and again (within 10 s of its start; the first one
    # may have too): replaced after a pause that grows, and said so.
    [young] = replacement
    os.kill(young, signal.SIGKILL)
    served.wait_for(rf"\(pid {young}\) was killed by SIGKILL after [\d.]+ s: replacing it")
    younger = served.pids(STARTED, 4)[-1]  # two at the start, two replacements
    os.kill(younger, signal.SIGKILL)
    served.wait_for(
        rf"\(pid {younger}\) was killed by SIGKILL after [\d.]+ s:"
        r" replacing it in (0\.5 s \(2|1\.0 s \(3) young deaths in a row\)"
    )
    latest = served.pids(STARTED, 5)[-1]
    served.wait_for(rf"serving eid\.v1 on \S+ \(pid {latest},")
    assert _answers(served.target, 4)
    assert served.process.poll() is None


@pytest.mark.parametrize(
    ("setting", "kind"), [({}, "uvloop"), ({"EID_EVENT_LOOP": "asyncio"}, "asyncio")]
)
def test_workers_serve_on_the_event_loop_set(
    tmp_path: Path, prepared: Path, setting: dict[str, str], kind: str
) -> None:
    """uvloop unless EID_EVENT_LOOP says otherwise; either answers."""
    env = serving_env(TMPDIR=str(tmp_path), **setting)
    server = Served(workdir_from(prepared, tmp_path), env)
    try:
        assert server.event_loops(2) == [kind, kind]
        assert _answers(server.target, 4)
    finally:
        server.close()


def test_workers_stop_when_their_parent_is_killed(served: Served) -> None:
    workers = served.serving_pids(2)
    served.process.send_signal(signal.SIGKILL)
    give_up = time.monotonic() + 5
    while not all(gone(pid) for pid in workers):
        assert time.monotonic() < give_up, "orphaned workers still running after 5 s"
        time.sleep(0.1)
    served.wait_for(r"the serving process \(pid \d+\) is gone|draining for up to")
    with EidClient(served.target, timeout=2) as client, pytest.raises(EidError):
        client.health()


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("EID_WORKERS", "abc", "EID_WORKERS must be a whole number, not 'abc'"),
        ("EID_GRACE_SECONDS", "-1", "EID_GRACE_SECONDS must be at least 0, not -1"),
        ("EID_DATABASE_URL", "mysql://eid:pw@db/eid", "EID_DATABASE_URL must be a sqlite or"),
    ],
)
def test_a_bad_setting_stops_the_start_naming_it(
    tmp_path: Path, setting: str, value: str, message: str
) -> None:
    done = _serve_once(tmp_path, {**serving_env(), setting: value})
    assert done.returncode == 2
    assert message in " ".join(done.stdout.split())  # as printed, whatever the width


def test_a_database_without_the_shipped_schema_stops_the_start(
    tmp_path: Path, prepared: Path
) -> None:
    workdir = workdir_from(prepared, tmp_path)
    # Never migrated (the other case, one migration short of the newest, is
    # in tests/integration/test_schema_version.py).
    env = serving_env(EID_DATABASE_URL=f"sqlite:///{tmp_path / 'never-migrated.db'}")
    done = _serve_once(workdir, env, "--workers", "1")
    assert done.returncode == 2
    assert "the database schema is not current: run `eid-server migrate`" in done.stderr


UNREACHABLE = "postgresql+psycopg://postgres:s3cret-db-password@127.0.0.1:5432/eid_no_such_database"


def test_a_database_that_cannot_be_reached_stops_one_worker_saying_why(
    tmp_path: Path, prepared: Path
) -> None:
    """One line with the database (its password masked) and the usual reason
    in fixed words: before, an uncaught OperationalError and its frames,
    which said neither where nor why."""
    workdir = workdir_from(prepared, tmp_path)
    done = _serve_once(workdir, serving_env(EID_DATABASE_URL=UNREACHABLE), "--workers", "1")
    assert done.returncode == 1
    assert (
        "not serving: the database cannot be reached at"
        " postgresql+psycopg://postgres:********@127.0.0.1:5432/eid_no_such_database"
        " (OperationalError: no such database or user)"
    ) in done.stderr
    assert "Traceback" not in done.stderr
    assert "s3cret-db-password" not in done.stdout + done.stderr


def test_workers_that_cannot_reach_the_database_say_why_and_are_replaced(
    tmp_path: Path, prepared: Path
) -> None:
    """The database may be starting (a host's boot): the supervisor keeps
    replacing the workers, each saying why it stopped."""
    workdir = workdir_from(prepared, tmp_path)
    env = serving_env(EID_DATABASE_URL=UNREACHABLE)
    with subprocess.Popen(
        [str(BIN / "eid-server"), "serve", "--workers", "2"],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as serving:
        lines, _ = log_until_stopped(serving, "replacing it")
    printed = "\n".join(lines)
    assert "(OperationalError: no such database or user)" in printed
    assert "worker failed" not in printed and "Traceback" not in printed
    assert "s3cret-db-password" not in printed
