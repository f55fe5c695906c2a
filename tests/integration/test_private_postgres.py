"""The tests' own PostgreSQL clusters (tests/private_postgres.py) do not
outlive a killed test run: the next cluster made stops and removes those
whose process is gone, and leaves the others alone."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.private_postgres import OWNER_FILE, PrivateCluster, find_bindir, process_identity


@pytest.fixture
def bindir() -> Path:
    found, why = find_bindir()
    if found is None:
        pytest.skip(why)
    return found


@pytest.fixture
def parent() -> Iterator[Path]:
    """The clusters' parent directory, of this test alone (the real ones, in
    the temporary directory, belong to other tests running meanwhile). In
    the system's temporary directory, not pytest's: as root the clusters
    run as the postgres user, who must reach it."""
    made = Path(tempfile.mkdtemp(prefix="eid-test-clusters-"))
    made.chmod(0o755)
    try:
        yield made
    finally:
        shutil.rmtree(made, ignore_errors=True)


def _answers(cluster: PrivateCluster) -> bool:
    try:
        with psycopg.connect(cluster.url(), connect_timeout=3) as connection:
            return connection.execute("SELECT 1").fetchone() == (1,)
    except psycopg.OperationalError:
        return False


def _dead_identity() -> str:
    """The identity a process had, once it has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    identity = process_identity(child.pid)
    child.wait()
    assert identity is not None or child.returncode == 0
    return identity or f"{child.pid} 0"


def test_a_killed_runs_cluster_is_stopped_and_removed_by_the_next(
    bindir: Path, parent: Path
) -> None:
    orphan = PrivateCluster(bindir, parent)
    orphan.init()
    orphan.start()
    live = PrivateCluster(bindir, parent)
    try:
        assert _answers(orphan)
        # As if the run that made it had been killed before its clean-up.
        (orphan.root / OWNER_FILE).write_text(_dead_identity() + "\n", "ascii")

        made = PrivateCluster(bindir, parent)
        try:
            assert not orphan.root.exists()
            assert not _answers(orphan)
            # Ours (this process) and the new one are left alone.
            assert live.root.exists() and made.root.exists()
        finally:
            made.destroy()
    finally:
        live.destroy()
        orphan.destroy()


def test_a_reused_pid_does_not_keep_an_orphan(bindir: Path, parent: Path) -> None:
    """The pid alone is not enough: a later process may have been given it."""
    orphan = PrivateCluster(bindir, parent)
    try:
        (orphan.root / OWNER_FILE).write_text(f"{os.getpid()} 1\n", "ascii")
        PrivateCluster(bindir, parent).destroy()
        assert not orphan.root.exists()
    finally:
        orphan.destroy()
