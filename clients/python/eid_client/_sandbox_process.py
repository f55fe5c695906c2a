"""The processes behind a :class:`~eid_client.sandbox.Sandbox`: finding this
environment's eid-server, the set-up steps, serving until SERVING, stopping."""

from __future__ import annotations

import importlib.util
import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from eid_client.client import EidClient
from eid_client.errors import EidError
from eid_client.retry import RetryPolicy

NOT_INSTALLED = (
    "the sandbox runs the eid server, which is not installed here: install the eid-service"
    " package (pip install ./service from the eid repository) into this environment"
)
ALL_MODES = "password,qr_share,one_time_code,demographic,approval"
# Where set_up writes a capture of every demo person's face, in the sandbox folder.
PORTRAITS = "portraits"
# The sandbox's server is on this machine: gRPC would otherwise send its calls
# to the proxy of http_proxy / https_proxy / grpc_proxy (set in many CIs).
NO_PROXY = ("grpc.enable_http_proxy", 0)
# What eid-server serve logs when its port is served or bound already.
_PORT_TAKEN = re.compile(r"port \d+ is already (?:in use|served)|Failed to bind")
# eid-server's commands in turn, in one interpreter (each eid-server start
# costs most of a second): eid_service.cli.main(argv) is what the script calls.
_SET_UP = """
import json, sys
from eid_service.cli import main
for argv in json.loads(sys.argv[1]):
    status = main(argv)
    if status:
        sys.exit(status)
"""


class SandboxError(RuntimeError):
    """The sandbox could not start: the server is not installed, or a set-up
    step or the server failed (the message ends with its last output)."""


class PortTaken(SandboxError):
    """Another process bound the free port first."""


def server_command() -> list[str]:
    if importlib.util.find_spec("eid_service") is None:
        raise SandboxError(NOT_INSTALLED)
    # This interpreter's own installation, never another one found on PATH.
    script = Path(sys.executable).parent / "eid-server"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from eid_service.cli import main; sys.exit(main())"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def run(command: list[str], workdir: Path, env: Mapping[str, str], what: str) -> str:
    """Runs ``command`` to completion; its output, or SandboxError with its end."""
    # This environment's own interpreter or eid-server, with our arguments.
    done = subprocess.run(  # noqa: S603
        command,
        cwd=workdir,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise SandboxError(f"{what} failed:\n{tail(done.stdout + done.stderr)}")
    return done.stdout


def set_up(workdir: Path, env: Mapping[str, str], party_name: str) -> tuple[str, str]:
    """``make run``'s steps and a relying party with every mode and high
    limits; returns its API key and id."""
    steps = [
        ["init-dev"],
        ["migrate"],
        ["load-demo"],
        # A capture of each demo person's face, for Register (Sandbox.portrait).
        ["demo-portrait", "--all", "--out", PORTRAITS],
        ["party", "create", "--name", party_name, "--modes", ALL_MODES,
         "--rate-limit", "100000", "--citizen-rate-limit", "100000"],
    ]  # fmt: skip
    said = run([sys.executable, "-c", _SET_UP, json.dumps(steps)], workdir, env, "setting up")
    found = re.search(r"rp_[0-9a-f]{16}", said)
    # `party create` prints the key alone on its last line, for scripts.
    return said.strip().splitlines()[-1], found.group(0) if found else ""


def serve(
    command: list[str], workdir: Path, env: Mapping[str, str], timeout: float
) -> subprocess.Popen[bytes]:
    """Starts ``eid-server serve`` and returns it once SERVING on EID_LISTEN."""
    log = workdir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 (our own eid-server)
            [*command, "serve"],
            cwd=workdir,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    deadline = time.monotonic() + timeout
    probe = EidClient(env["EID_LISTEN"], timeout=1.0, retry=RetryPolicy.off(), options=[NO_PROXY])
    with probe:
        while True:
            if process.poll() is not None:
                said = tail(log.read_text("utf-8", errors="replace"))
                failure = PortTaken if _PORT_TAKEN.search(said) else SandboxError
                raise failure(f"eid-server serve exited during start-up:\n{said}")
            try:
                if probe.health() == "SERVING":
                    return process
            except EidError:
                pass
            if time.monotonic() > deadline:
                stop(process)
                raise SandboxError(f"eid-server was not SERVING within {timeout:g} s")
            time.sleep(0.1)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the server drains its calls), then SIGKILL after 10 seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
