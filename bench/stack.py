"""The processes a bench run starts, and stopping them whatever happens.

Both servers run as separate processes on free loopback ports, each in a
session of its own: a terminal's Ctrl-C reaches only the bench, which then
stops them itself (SIGTERM, then SIGKILL to the whole process group, which
also catches eid's worker processes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import grpc

from bench.echo_server import METHOD as ECHO_METHOD
from eid_client import EidClient, EidError

LOOPBACK = "127.0.0.1"
# Loopback must never go through an HTTP proxy from the environment.
CHANNEL_OPTIONS = [("grpc.enable_http_proxy", 0)]
STOP_GRACE_SECONDS = 10.0
START_TIMEOUT_SECONDS = 60.0


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
    # The user's own EID_* settings must not leak into the measured server.
    env = {k: v for k, v in os.environ.items() if not k.startswith("EID_")}
    env.update(overrides)
    return env


def start_echo_server(procs: ProcessSet, workdir: Path) -> str:
    """Starts the echo server; returns its address once it answers."""
    port = free_port()
    address = f"{LOOPBACK}:{port}"
    script = Path(__file__).with_name("echo_server.py")
    procs.start(
        "echo server",
        [sys.executable, str(script), "--host", LOOPBACK, "--port", str(port)],
        cwd=workdir,
        env=_clean_env(),
        log=workdir / "echo-server.log",
    )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    with grpc.insecure_channel(address, CHANNEL_OPTIONS) as channel:
        echo = channel.unary_unary(ECHO_METHOD, None, None)
        while True:
            procs.check_alive()
            try:
                if echo(b"ping", timeout=1.0) == b"ping":
                    return address
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise BenchError(f"echo server did not answer on {address}") from None
                time.sleep(0.1)


def eid_server_command() -> list[str]:
    """``eid-server`` from this interpreter's environment (as ``make run`` uses it)."""
    beside = Path(sys.executable).with_name("eid-server")
    found = str(beside) if beside.exists() else shutil.which("eid-server")
    if found is None:
        raise BenchError("eid-server is not installed: run `make venv`")
    return [found]


@dataclass(frozen=True)
class EidServer:
    address: str
    api_key: str
    outbox: Path
    log: Path


def start_eid_server(
    procs: ProcessSet, workdir: Path, *, workers: int, database_url: str | None = None
) -> EidServer:
    """Sets up a fresh eid in ``workdir`` the way ``make run`` does, serves it, and
    returns once it reports SERVING."""
    port = free_port()
    address = f"{LOOPBACK}:{port}"
    var = workdir / "var"
    env = _clean_env(
        EID_LISTEN=address,
        EID_DATABASE_URL=database_url or f"sqlite+aiosqlite:///{var / 'eid.db'}",
        EID_KEYS_FILE=str(var / "keys.json"),
        EID_OUTBOX_FILE=str(var / "outbox.log"),
        EID_WORKERS=str(workers),
        EID_CONSOLE_SENDER="false",
        # INFO logs a line per RPC, which would be measured too.
        EID_LOG_LEVEL="WARNING",
        EID_GRACE_SECONDS="2",
    )
    eid_server = eid_server_command()
    api_key = ""
    for step in (["init-dev"], ["migrate"], ["load-demo"], ["party", "create", "--name", "Bench"]):
        done = subprocess.run(
            [*eid_server, *step],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_SECONDS,
            check=False,
        )
        if done.returncode != 0:
            raise BenchError(f"eid-server {' '.join(step)} failed:\n{done.stdout}{done.stderr}")
        # `party create` prints the API key alone on its last line.
        api_key = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if not api_key or any(c.isspace() for c in api_key):
        raise BenchError(f"no API key in the output of `eid-server party create`: {api_key!r}")

    log = workdir / "eid-server.log"
    procs.start(
        "eid server",
        [*eid_server, "serve", "--workers", str(workers), "--listen", address],
        cwd=workdir,
        env=env,
        log=log,
    )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    with EidClient(address, timeout=1.0, options=CHANNEL_OPTIONS) as client:
        while True:
            procs.check_alive()
            try:
                if client.health() == "SERVING":
                    return EidServer(address, api_key, var / "outbox.log", log)
            except EidError:
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"eid server not SERVING on {address}:\n{log_tail(log)}")
            time.sleep(0.2)


@contextlib.contextmanager
def scratch_postgres(admin_dsn: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for one run (dropped afterwards); yields
    its SQLAlchemy URL."""
    import asyncpg  # the server's driver, installed with it

    name = f"eid_bench_{secrets.token_hex(6)}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(admin_dsn)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    base = admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
