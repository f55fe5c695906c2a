"""Real processes: `eid-server` and the `eid` CLI, as a newcomer runs them."""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from eid.v1 import identity_service_pb2_grpc as pb_grpc
from eid_client.client import EidClient
from eid_client.errors import EidError, error_from_rpc_error
from eid_client.retry import RetryPolicy

BIN = Path(sys.executable).parent


# Where free_port looks first: below the kernel's usual ephemeral range.
_OWN_PORTS = range(20000, 32768)


def _ephemeral_ports() -> range:
    """The ports the kernel hands out itself (bind to port 0, the local end
    of an outgoing connection)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)  # Linux's default


def free_port() -> int:
    """A port of 127.0.0.1 free now, outside the kernel's ephemeral range:
    the crash tests kill a server and restart it on the same port, and a
    port the kernel can hand out was once taken in between by another
    test's process (its server then never came back)."""
    ephemeral = _ephemeral_ports()
    own = [p for p in _OWN_PORTS if p not in ephemeral]
    for port in random.sample(own, min(len(own), 200)):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # something has it
            return port
    with socket.socket() as s:  # no such port free: any the kernel gives
        s.bind(("127.0.0.1", 0))
        found: int = s.getsockname()[1]
        return found


@dataclass
class Deployment:
    workdir: Path
    target: str
    env: dict[str, str]
    server: subprocess.Popen[bytes]

    def admin(self, *args: str) -> str:
        done = subprocess.run(
            [str(BIN / "eid-server"), *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    def eid(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(BIN / "eid"), "--target", self.target, *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"eid {args[0]} failed: {done.stderr}")
        return done

    def eid_json(self, *args: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.eid("--json", *args).stdout)
        return result

    def outbox_lines(self) -> list[str]:
        outbox = self.workdir / "var" / "outbox.log"
        if not outbox.exists():
            return []
        lines = outbox.read_text("utf-8").split("\n")
        # The last piece is "" after a whole line, else a line still being written.
        return lines[:-1]

    def latest_code(self, phone_e164: str, timeout: float = 10, *, after: int = 0) -> str:
        """The code in the newest SMS to this phone that carries one, among
        the lines of var/outbox.log past the first `after`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in reversed(self.outbox_lines()[after:]):
                message = json.loads(line)
                found = re.search(r"\b(\d{6})\b", message["body"])
                if message["to"] == phone_e164 and found is not None:
                    return found.group(1)
            time.sleep(0.05)
        raise AssertionError("no SMS with a code in var/outbox.log")


def _serving(target: str) -> bool:
    # A new channel each time: a channel refused once backs off for a second or more.
    with EidClient(target, timeout=1.0, retry=RetryPolicy.off()) as probe:
        try:
            return probe.health() == "SERVING"
        except EidError:
            return False


def wait_serving(deployment: Deployment, timeout: float = 30) -> None:
    """Until the standard health check answers SERVING (asked in-process:
    starting an `eid health` process per poll cost more than the wait)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if deployment.server.poll() is not None:
            raise AssertionError("the server exited during start-up")
        if _serving(deployment.target):
            return
        time.sleep(0.05)
    raise AssertionError("the server did not become SERVING")


def _environment(**settings: str) -> dict[str, str]:
    return {
        **os.environ,
        "EID_LISTEN": f"127.0.0.1:{free_port()}",
        "EID_CONSOLE_SENDER": "false",
        "EID_OUTBOX_FILE": "var/outbox.log",
        "EID_GRACE_SECONDS": "5",
        # The devices connect from here, which plays their load balancer: a
        # device may name its own address (x-forwarded-for) to be a source
        # of its own for per-source limits.
        "EID_TRUSTED_PROXIES": "127.0.0.1",
        **settings,
    }


def prepare(workdir: Path, **settings: str) -> dict[str, str]:
    """`make run`'s set-up steps in `workdir`, on a free port; returns the
    environment to serve with (`settings` adds or overrides EID_* values)."""
    env = _environment(**settings)
    for step in ("init-dev", "migrate", "load-demo"):
        subprocess.run(
            [str(BIN / "eid-server"), step],
            cwd=workdir,
            env=env,
            check=True,
            timeout=60,
            capture_output=True,
        )
    return env


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory where `make run`'s set-up steps ran (keys, migrated
    database, demo registry): they take three processes, about 2 s."""
    workdir = tmp_path_factory.mktemp("prepared")
    prepare(workdir)
    return workdir


@contextlib.contextmanager
def serving_two_workers(
    workdir: Path, env: dict[str, str], *, keep_stderr: bool = False
) -> Iterator[Deployment]:
    """`eid-server serve --workers 2` in `workdir` until the block ends (a
    SIGTERM, then a kill if it has not stopped in 20 s); its stderr kept for
    the test to read, or dropped."""
    server = subprocess.Popen(
        [str(BIN / "eid-server"), "serve", "--workers", "2"],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE if keep_stderr else subprocess.DEVNULL,
    )
    d = Deployment(workdir, env["EID_LISTEN"], env, server)
    try:
        wait_serving(d)
        yield d
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        if server.stderr is not None:
            server.stderr.close()


@pytest.fixture
def deployment(tmp_path: Path, prepared: Path) -> Iterator[Deployment]:
    """A copy of the `make run` set-up (no process has it open, so its files
    are the whole of it), then `serve` with two workers on a free port."""
    shutil.copytree(prepared / "var", tmp_path / "var")
    with serving_two_workers(tmp_path, _environment(), keep_stderr=True) as d:
        yield d


class Device:
    """One app on one device: its own connection (so calls spread over workers)."""

    def __init__(self, target: str) -> None:
        self.channel = grpc.insecure_channel(target)
        self.stub = pb_grpc.IdentityServiceStub(self.channel)

    def __call__(self, rpc: str, request: Any, **metadata: str) -> Any:
        pairs = [(k.replace("_", "-"), v) for k, v in metadata.items()]
        try:
            return getattr(self.stub, rpc)(request, timeout=20, metadata=pairs)
        except grpc.RpcError as e:
            return error_from_rpc_error(e)


@pytest.fixture
def devices(deployment: Deployment) -> Iterator[list[Device]]:
    made = [Device(deployment.target) for _ in range(8)]
    try:
        yield made
    finally:
        for d in made:
            d.channel.close()
