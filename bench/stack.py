"""The processes a bench run starts, stopping them whatever happens, and what
/proc says about them (resident memory, connections per worker).

Every server runs as a separate process on a free loopback port, in a session
of its own: a terminal's Ctrl-C reaches only the bench, which then stops them
itself (SIGTERM, then SIGKILL to the whole process group, which also catches
eid's worker processes).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import grpc

from bench.durable_write_server import METHOD as DURABLE_WRITE_METHOD
from bench.echo_server import METHOD as ECHO_METHOD
from eid_client import EidClient, EidError, RetryPolicy

LOOPBACK = "127.0.0.1"
# Loopback must never go through an HTTP proxy from the environment.
CHANNEL_OPTIONS = [("grpc.enable_http_proxy", 0)]
STOP_GRACE_SECONDS = 10.0
START_TIMEOUT_SECONDS = 60.0
# Loading thousands of synthetic citizens (load-demo --synthetic) takes a while.
SETUP_TIMEOUT_SECONDS = 300.0
BENCH_DIR = Path(__file__).parent


class BenchError(Exception):
    """The bench could not set up what it measures."""


def free_port() -> int:
    """A TCP port free on loopback right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
        return port


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class _Started:
    name: str
    process: subprocess.Popen[bytes]
    log: Path


class ProcessSet:
    """Starts long-running processes; stops all of them on exit, even on error or Ctrl-C."""

    def __init__(self) -> None:
        self._started: list[_Started] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()

    def start(
        self, name: str, argv: list[str], *, cwd: Path, env: dict[str, str], log: Path
    ) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            process = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._started.append(_Started(name, process, log))
        return process

    def check_alive(self) -> None:
        for s in self._started:
            if s.process.poll() is not None:
                raise BenchError(
                    f"{s.name} exited with status {s.process.returncode}:\n{log_tail(s.log)}"
                )

    def stop_all(self) -> None:
        # Ask everything to stop first, so the graceful drains overlap.
        for s in self._started:
            if s.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    s.process.terminate()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for s in reversed(self._started):
            # A second Ctrl-C while waiting skips to the kill.
            with contextlib.suppress(subprocess.TimeoutExpired, KeyboardInterrupt):
                s.process.wait(max(0.1, deadline - time.monotonic()))
            # The session leader's pid is its process group id; this also ends
            # children it left behind (eid's workers) or never stopped.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(s.process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                s.process.wait(5)
        self._started.clear()


def _clean_env(**overrides: str) -> dict[str, str]:
    # The user's own EID_* (and telemetry OTEL_*) settings must not leak into
    # the measured server.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EID_", "OTEL_"))}
    env.update(overrides)
    return env


def _wait_raw(procs: ProcessSet, name: str, address: str, method: str, probe: bytes) -> None:
    """Returns once ``method`` answers ``probe`` (raw bytes) without error."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    with grpc.insecure_channel(address, CHANNEL_OPTIONS) as channel:
        call = channel.unary_unary(method, None, None)
        while True:
            procs.check_alive()
            try:
                call(probe, timeout=1.0)
                return
            except grpc.RpcError as e:
                if time.monotonic() > deadline:
                    raise BenchError(f"{name} did not answer on {address}: {e}") from None
                time.sleep(0.1)


def start_echo_server(procs: ProcessSet, workdir: Path) -> str:
    """Starts the echo server; returns its address once it answers."""
    port = free_port()
    address = f"{LOOPBACK}:{port}"
    script = BENCH_DIR / "echo_server.py"
    procs.start(
        "echo server",
        [sys.executable, str(script), "--host", LOOPBACK, "--port", str(port)],
        cwd=workdir,
        env=_clean_env(),
        log=workdir / "echo-server.log",
    )
    _wait_raw(procs, "echo server", address, ECHO_METHOD, b"ping")
    return address


def start_durable_write_server(
    procs: ProcessSet,
    workdir: Path,
    *,
    public_key: str,
    probe: bytes,
    group_commit: bool = False,
    postgres: str | None = None,
    threads: int = 4,
) -> str:
    """Starts a bare durable write server (its SQLite file in a folder of ``workdir``,
    or with ``postgres`` a DSN, in that database with ``threads`` writer threads)
    that checks signatures with ``public_key`` (raw, hex); returns its address once
    it has committed ``probe``, a signed request."""
    name = "durable-write-postgres" if postgres else "durable-write"
    name += "-group" if group_commit else ""
    port = free_port()
    address = f"{LOOPBACK}:{port}"
    argv = [sys.executable, str(BENCH_DIR / "durable_write_server.py"), "--host", LOOPBACK]
    argv += ["--port", str(port), "--public-key", public_key]
    if postgres:
        argv += ["--postgres", postgres, "--threads", str(threads)]
    else:
        argv += ["--dir", str(workdir / name)]
    if group_commit:
        argv.append("--group-commit")
    label = f"{name.replace('-', ' ')} server"
    procs.start(label, argv, cwd=workdir, env=_clean_env(), log=workdir / f"{name}-server.log")
    _wait_raw(procs, label, address, DURABLE_WRITE_METHOD, probe)
    return address


def eid_server_command() -> list[str]:
    """``eid-server`` from this interpreter's environment (as ``make run`` uses it)."""
    beside = Path(sys.executable).with_name("eid-server")
    found = str(beside) if beside.exists() else shutil.which("eid-server")
    if found is None:
        raise BenchError("eid-server is not installed: run `make venv`")
    return [found]


@dataclass(frozen=True)
class EidServer:
    name: str  # for labels, e.g. "eid (2 workers)"
    address: str
    api_key: str
    workers: int
    outbox: Path
    log: Path
    process: subprocess.Popen[bytes]  # `eid-server serve`; its children are the workers


def start_eid_server(
    procs: ProcessSet,
    workdir: Path,
    *,
    workers: int,
    database_url: str | None = None,
    synthetic: int = 0,
    settings: Mapping[str, str] | None = None,
) -> EidServer:
    """Sets up a fresh eid in ``workdir`` the way ``make run`` does (plus ``synthetic``
    registrable citizens: ``load-demo --synthetic N``), serves it with ``workers``
    processes, and returns once it reports SERVING. ``settings`` adds environment
    variables (bench/tracing.py: OTEL_*)."""
    name = f"eid ({workers} worker{'s' if workers > 1 else ''})"
    port = free_port()
    address = f"{LOOPBACK}:{port}"
    var = workdir / "var"
    env = _clean_env(
        EID_LISTEN=address,
        EID_DATABASE_URL=database_url or f"sqlite:///{var / 'eid.db'}",
        EID_KEYS_FILE=str(var / "keys.json"),
        EID_OUTBOX_FILE=str(var / "outbox.log"),
        EID_WORKERS=str(workers),
        EID_CONSOLE_SENDER="false",
        # INFO logs a line per RPC, which would be measured too.
        EID_LOG_LEVEL="WARNING",
        EID_GRACE_SECONDS="2",
        # Every call comes from this one address: lift the per-source limits,
        # as an operator would for a load test (the counting itself stays).
        EID_REGISTER_PER_SOURCE_PER_HOUR="100000000",
        EID_CODE_REQUESTS_PER_SOURCE_PER_HOUR="100000000",
        EID_OTP_PER_PARTY_CITIZEN_PER_MINUTE="100000000",
        EID_OTP_PER_PARTY_CITIZEN_PER_DAY="100000000",
        EID_OTP_PER_CITIZEN_PER_DAY="100000000",
    )
    env.update(settings or {})
    eid_server = eid_server_command()
    load_demo = ["load-demo", *(["--synthetic", str(synthetic)] if synthetic else [])]
    api_key = ""
    workdir.mkdir(parents=True, exist_ok=True)
    for step in (
        ["init-dev"],
        ["migrate"],
        load_demo,
        [
            "party",
            "create",
            "--name",
            "Bench",
            # Every mode the bench measures, and limits a load test does not hit.
            "--modes",
            "password,one_time_code,demographic,qr_share",
            "--rate-limit",
            "100000",
            "--citizen-rate-limit",
            "100000",
        ],
    ):
        done = subprocess.run(
            [*eid_server, *step],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=SETUP_TIMEOUT_SECONDS,
            check=False,
        )
        if done.returncode != 0:
            raise BenchError(
                f"{name}: eid-server {' '.join(step)} failed:\n{done.stdout}{done.stderr}"
            )
        # `party create` prints the API key alone on its last line.
        api_key = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if not api_key or any(c.isspace() for c in api_key):
        raise BenchError(f"no API key in the output of `eid-server party create`: {api_key!r}")

    log = workdir / "eid-server.log"
    process = procs.start(
        f"{name} server",
        [*eid_server, "serve", "--workers", str(workers), "--listen", address],
        cwd=workdir,
        env=env,
        log=log,
    )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    # A probe: each health check answers at once, not after retries.
    with EidClient(
        address, timeout=1.0, options=CHANNEL_OPTIONS, retry=RetryPolicy.off()
    ) as client:
        while True:
            procs.check_alive()
            try:
                if client.health() == "SERVING":
                    return EidServer(
                        name, address, api_key, workers, var / "outbox.log", log, process
                    )
            except EidError:
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"{name} not SERVING on {address}:\n{log_tail(log)}")
            time.sleep(0.2)


# --- what /proc says about eid's processes (Linux) ---------------------------------------------


@dataclass(frozen=True)
class ProcessMemory:
    pid: int
    role: str  # "worker" or "supervisor" (the parent of several workers)
    rss_mb: float | None  # None: not readable here (no /proc, or the process is gone)


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return sorted(found)


def _is_worker(pid: int) -> bool:
    # multiprocessing's spawned children run spawn_main; its resource tracker does not.
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def worker_pids(server: EidServer) -> list[int]:
    """The processes serving calls: with one worker `serve` itself, else its spawned children."""
    if server.workers <= 1:
        return [server.process.pid]
    return [pid for pid in _children(server.process.pid) if _is_worker(pid)]


def resident_mb(pid: int) -> float | None:
    """VmRSS of ``pid`` in MB (MiB), from /proc/<pid>/status."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def eid_memory(server: EidServer) -> list[ProcessMemory]:
    """Resident memory of each eid worker, and of the supervisor when there are several."""
    workers = [ProcessMemory(pid, "worker", resident_mb(pid)) for pid in worker_pids(server)]
    if server.workers <= 1:
        return workers or [ProcessMemory(server.process.pid, "worker", None)]
    supervisor = ProcessMemory(server.process.pid, "supervisor", resident_mb(server.process.pid))
    return [supervisor, *workers]


def filesystem_type(path: Path) -> str | None:
    """The type of the file system holding ``path`` (e.g. "ext4", "tmpfs"), from /proc/mounts."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    found: tuple[int, str] | None = None
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        mount_point = Path(fields[1].replace("\\040", " "))
        # The deepest mount point holding the path; of equals, the last (topmost) one.
        if (mount_point == path or mount_point in path.parents) and (
            found is None or len(mount_point.parts) >= found[0]
        ):
            found = (len(mount_point.parts), fields[2])
    return found[1] if found else None


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    return inodes


def connections_per_worker(server: EidServer) -> dict[int, int] | None:
    """Established client connections each eid worker holds (the kernel spreads
    connections, not calls, over the workers sharing the port); None where /proc
    cannot tell."""
    port = int(server.address.rsplit(":", 1)[1])
    established: set[str] = set()
    try:
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with contextlib.suppress(FileNotFoundError):
                for line in Path(table).read_text().splitlines()[1:]:
                    fields = line.split()
                    local_port = int(fields[1].rsplit(":", 1)[1], 16)
                    if local_port == port and fields[3] == "01":  # ESTABLISHED
                        established.add(fields[9])
    except (OSError, ValueError, IndexError):
        return None
    pids = worker_pids(server)
    if not pids:
        return None
    return {pid: len(_socket_inodes(pid) & established) for pid in pids}


@contextlib.contextmanager
def scratch_postgres(admin_dsn: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for one run (dropped afterwards); yields
    its SQLAlchemy URL."""
    import psycopg  # the server's driver, installed with it

    name = f"eid_bench_{secrets.token_hex(6)}"

    def admin(sql: str) -> None:
        with psycopg.connect(admin_dsn, autocommit=True) as connection:
            connection.execute(sql.encode())

    admin(f'CREATE DATABASE "{name}"')
    base = admin_dsn.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
