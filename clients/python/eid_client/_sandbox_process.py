"""The processes behind a :class:`~eid_client.sandbox.Sandbox`: finding this
environment's eid-server, the set-up steps, serving until SERVING, stopping,
and the watchdog that cleans up after a test process killed outright."""

from __future__ import annotations

import contextlib
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


# Runs beside the test process (standard library only: it starts in ~30 ms).
# It reads the pids of the sandbox's processes on stdin, acknowledging each;
# when stdin closes without it being dismissed first, the test process has
# ended without stopping the sandbox (SIGKILL, or SIGTERM, where no atexit
# handler runs), so it stops those processes and deletes the folder. A pidfd
# names the very process even after it exits (no pid reuse), where there is one.
_WATCHDOG = """
import os, select, shutil, signal, sys, time

def stop(pid, handle):
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            if handle is None:
                os.kill(pid, sig)
            else:
                signal.pidfd_send_signal(handle, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if handle is not None:
                if select.select([handle], [], [], deadline - time.monotonic())[0]:
                    return
            else:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.1)

def end(*_):
    for pid, handle in watched:
        stop(pid, handle)
    shutil.rmtree(sys.argv[1], ignore_errors=True)
    os._exit(0)

watched = []
signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the test process stops the sandbox
signal.signal(signal.SIGTERM, end)  # the CI ends the whole process group
for line in sys.stdin:
    pid = int(line)
    try:
        handle = os.pidfd_open(pid)
    except (AttributeError, OSError):
        handle = None
    watched.append((pid, handle))
    print(pid, flush=True)
end()
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


class Watchdog:
    """The process that stops the sandbox's processes and deletes its folder
    if the test process ends without doing so (see _WATCHDOG)."""

    def __init__(self, folder: Path) -> None:
        # Our own interpreter running our own script.
        self._process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-c", _WATCHDOG, str(folder)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def watch(self, pid: int) -> None:
        """Returns once the watchdog holds ``pid`` (before anyone reaps it)."""
        pipe_in, pipe_out = self._process.stdin, self._process.stdout
        if pipe_in is None or pipe_out is None:  # pragma: no cover (always pipes)
            return
        try:
            pipe_in.write(f"{pid}\n")
            pipe_in.flush()
        except BrokenPipeError:  # the watchdog has ended; the sandbox still works
            return
        pipe_out.readline()

    def dismiss(self) -> None:
        """The sandbox stops normally: the watchdog ends, doing nothing."""
        self._process.kill()
        self._process.wait()
        for pipe in (self._process.stdin, self._process.stdout):
            if pipe is not None:
                with contextlib.suppress(BrokenPipeError):
                    pipe.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def too_slow(what: str, timeout: float, said: str) -> SandboxError:
    return SandboxError(
        f"{what} took more than {timeout:g} s: on a slow or busy machine (a CI runner,"
        " several test workers at once) give it longer with Sandbox(startup_timeout=...)"
        + (f"; its last output:\n{tail(said)}" if said.strip() else "")
    )


def run(
    command: list[str],
    workdir: Path,
    env: Mapping[str, str],
    what: str,
    *,
    timeout: float = 300,
    watchdog: Watchdog | None = None,
) -> str:
    """Runs ``command`` to completion; its output, or SandboxError with its end."""
    # This environment's own interpreter or eid-server, with our arguments.
    with subprocess.Popen(  # noqa: S603
        command,
        cwd=workdir,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    ) as process:
        if watchdog is not None:
            watchdog.watch(process.pid)
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            raise too_slow(what, timeout, out + err) from None
        except BaseException:  # Ctrl-C, as subprocess.run does
            process.kill()
            raise
    if process.returncode != 0:
        raise SandboxError(f"{what} failed:\n{tail(out + err)}")
    return out


def set_up(
    workdir: Path, env: Mapping[str, str], party_name: str, timeout: float, watchdog: Watchdog
) -> tuple[str, str]:
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
    said = run(
        [sys.executable, "-c", _SET_UP, json.dumps(steps)],
        workdir,
        env,
        "setting up the sandbox",
        timeout=timeout,
        watchdog=watchdog,
    )
    found = re.search(r"rp_[0-9a-f]{16}", said)
    # `party create` prints the key alone on its last line, for scripts.
    return said.strip().splitlines()[-1], found.group(0) if found else ""


def serve(
    command: list[str], workdir: Path, env: Mapping[str, str], timeout: float, watchdog: Watchdog
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
    watchdog.watch(process.pid)
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
                said = log.read_text("utf-8", errors="replace")
                raise too_slow("starting eid-server serve", timeout, said)
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
