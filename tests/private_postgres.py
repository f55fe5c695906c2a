"""A PostgreSQL cluster of a test's own, which it may stop and start at will.

The shared PostgreSQL (127.0.0.1:5432) serves every other test, so a test
that takes the database away makes its own: `initdb` into a temporary
directory, `pg_ctl start` on a free port, `pg_ctl stop -m fast` or `-m
immediate` (the crash-like stop) and start again. initdb refuses to run as
root: as root, the binaries run as the `postgres` OS user, who owns the data
directory. `find_bindir()` finds the installed version at run time and says
why not when there is none (the caller skips with that reason).
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
from pathlib import Path

NEEDED = ("initdb", "pg_ctl", "postgres")
SUPERUSER = "postgres"


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

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = free_port()
        self._as_owner: list[str] = []
        self.root = Path(tempfile.mkdtemp(prefix="eid-pg-"))
        if os.geteuid() == 0:
            owner = pwd.getpwnam(SUPERUSER)
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._as_owner = ["runuser", "-u", SUPERUSER, "--"]
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
