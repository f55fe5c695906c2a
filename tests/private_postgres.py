"""A PostgreSQL cluster of a test's own, which it may stop and start at will.

The shared PostgreSQL (127.0.0.1:5432) serves every other test, so a test
that takes the database away makes its own: `initdb` into a temporary
directory, `pg_ctl start` on a free port, `pg_ctl stop -m fast` or `-m
immediate` (the crash-like stop) and start again. initdb refuses to run as
root: as root, the binaries run as the `postgres` OS user, who owns the data
directory. `find_bindir()` finds the installed version at run time and says
why not when there is none (the caller skips with that reason).

A test run that is killed (Ctrl-C twice, SIGKILL, a CI timeout) never
reaches `destroy`, and its cluster would go on running. So each cluster
names the process that made it (pid and start time, in `owner`), and making
a cluster first stops and removes those whose process is gone.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

NEEDED = ("initdb", "pg_ctl", "postgres")
SUPERUSER = "postgres"
PREFIX = "eid-pg-"
OWNER_FILE = "owner"
UNOWNED_GRACE_SECONDS = 600.0


def process_identity(pid: int) -> str | None:
    """`pid` and its start time (clock ticks since boot): a pid reused by a
    later process has another; None if no such process (or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text("ascii")
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    if fields[0] in {"Z", "X"}:
        return None
    return f"{pid} {fields[19]}"


def _owner_alive(root: Path) -> bool:
    try:
        recorded = (root / OWNER_FILE).read_text("ascii").strip()
    except FileNotFoundError:
        # Being made this moment (by another test process), or left by a run
        # from before owners were recorded: only the latter is old.
        with contextlib.suppress(OSError):
            return time.time() - root.stat().st_mtime < UNOWNED_GRACE_SECONDS
        return False
    except OSError:
        return True  # unreadable: not ours to judge
    pid = recorded.partition(" ")[0]
    return pid.isdigit() and process_identity(int(pid)) == recorded


def reap_orphans(bindir: Path, parent: Path | None = None) -> list[Path]:
    """Stops (as in a crash) and removes the clusters under `parent` (the
    temporary directory) whose owning process is gone; returns their roots."""
    reaped = []
    for root in sorted(Path(parent or tempfile.gettempdir()).glob(f"{PREFIX}*")):
        if not root.is_dir() or _owner_alive(root):
            continue
        if (root / "data" / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                stop = ["pg_ctl", "stop", "-w", "-m", "immediate", "-D", str(root / "data")]
                subprocess.run(
                    [*_as_superuser(), str(bindir / stop[0]), *stop[1:]],
                    capture_output=True,
                    timeout=60,
                    stdin=subprocess.DEVNULL,
                    cwd=root,
                )
        shutil.rmtree(root, ignore_errors=True)
        reaped.append(root)
    return reaped


def _as_superuser() -> list[str]:
    return ["runuser", "-u", SUPERUSER, "--"] if os.geteuid() == 0 else []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _has_server(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in NEEDED)


def _version(bindir: str) -> tuple[int, ...]:
    """/usr/lib/postgresql/15/bin -> (15,): the newest installed comes first."""
    name = Path(bindir).parent.name
    return tuple(int(p) for p in name.split(".") if p.isdigit())


def find_bindir() -> tuple[Path | None, str]:
    """The directory of initdb, pg_ctl and postgres, or None and why."""
    candidates: list[str] = []
    if explicit := os.environ.get("EID_TEST_PG_BINDIR"):
        candidates.append(explicit)
    if shutil.which("pg_config"):
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            found = subprocess.run(
                ["pg_config", "--bindir"], capture_output=True, text=True, timeout=10, check=True
            )
            candidates.append(found.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True)
    if initdb := shutil.which("initdb"):
        candidates.append(str(Path(initdb).resolve().parent))
    for candidate in candidates:
        if candidate and _has_server(Path(candidate)):
            return Path(candidate), ""
    looked = ", ".join(dict.fromkeys(c for c in candidates if c)) or "nowhere"
    return None, f"no PostgreSQL server binaries ({', '.join(NEEDED)}) found; looked in {looked}"


class PrivateCluster:
    """One cluster in a temporary directory, on a free port of 127.0.0.1,
    trusting local connections (it listens on loopback only)."""

    def __init__(self, bindir: Path, parent: Path | None = None) -> None:
        self.bindir = bindir
        reap_orphans(bindir, parent)
        self.port = free_port()
        self._as_owner = _as_superuser()
        self.root = Path(tempfile.mkdtemp(prefix=PREFIX, dir=parent))
        identity = process_identity(os.getpid())
        assert identity is not None
        (self.root / OWNER_FILE).write_text(identity + "\n", "ascii")
        if os.geteuid() == 0:
            owner = pwd.getpwnam(SUPERUSER)
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 60) -> None:
        done = subprocess.run(
            [*self._as_owner, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.root,
            stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            raise AssertionError(f"{Path(args[0]).name} failed: {done.stdout}{done.stderr}")

    def init(self) -> None:
        # --no-sync: only initdb's own files; the server itself fsyncs as usual.
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        )

    def start(self) -> None:
        """Until it accepts connections (pg_ctl -w)."""
        options = " ".join(
            (
                "-c listen_addresses=127.0.0.1",
                f"-c port={self.port}",
                f"-c unix_socket_directories={self.root}",
            )
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "start",
            "-w",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
        )

    def stop(self, mode: str = "fast") -> None:
        """`fast`: sessions are ended and a checkpoint written; `immediate`:
        every process quits at once, as in a crash (the next start replays
        the WAL). Returns once the server is gone."""
        self._run(str(self.bindir / "pg_ctl"), "stop", "-w", "-m", mode, "-D", str(self.data))

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"'.encode())
        return self.url(name)

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(AssertionError, subprocess.SubprocessError):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
