"""A throw-away eid server for your own tests: a real ``eid-server`` process on
an ephemeral port of 127.0.0.1, with an embedded SQLite database in a temporary
folder, the demo population registry and a relying party (all Verify modes)
whose API key you get. Messages are written to a file instead of sent, so a test
reads the activation and one-time codes back. Like a test container, but a
process: it needs the eid server package (``eid-service``, the ``service/``
folder of the eid repository) installed in the same environment.

::

    from eid_client.sandbox import Sandbox

    with Sandbox() as sb:
        lan = sb.activate_citizen(password="correct horse battery staple")
        with sb.client() as eid:  # an EidClient with the party's API key
            assert eid.verify_password(personal_id=lan.personal_id,
                                       password="correct horse battery staple").verified

As a pytest fixture (one server for the whole run; ``scope="module"`` for one
per test module)::

    @pytest.fixture(scope="session")
    def eid_sandbox() -> Iterator[Sandbox]:
        with Sandbox() as sb:
            yield sb

The server stops when the ``with`` block ends, an exception included (or at
:meth:`Sandbox.stop`, or when the interpreter exits), and its folder is deleted.
Limits on registrations and codes are raised so tests do not trip them; pass
``env={"EID_REGISTER_PER_SOURCE_PER_HOUR": "20"}`` (any ``EID_*`` setting) to
test the real ones.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from eid_client._sandbox_data import (
    DemoCitizen,
    OutboxMessage,
    demo_citizens,
    read_outbox,
    wait_for_code,
)
from eid_client.client import EidClient
from eid_client.errors import EidError
from eid_client.retry import RetryPolicy

__all__ = ["DemoCitizen", "OutboxMessage", "Sandbox", "SandboxError"]

NOT_INSTALLED = (
    "the sandbox runs the eid server, which is not installed here: install the eid-service"
    " package (pip install ./service from the eid repository) into this environment"
)
_ALL_MODES = "password,qr_share,one_time_code,demographic,approval"
# Runs eid-server's commands in turn: eid_service.cli.main(argv) is what the
# eid-server script calls.
_SET_UP = """
import json, sys
from eid_service.cli import main
for argv in json.loads(sys.argv[1]):
    status = main(argv)
    if status:
        sys.exit(status)
"""
# Tests register and ask for codes far more often than people do.
_RELAXED_LIMITS = {
    "EID_REGISTER_PER_SOURCE_PER_HOUR": "10000",
    "EID_REGISTER_PER_PHONE_PER_DAY": "10000",
    "EID_CODE_REQUESTS_PER_SOURCE_PER_HOUR": "10000",
    "EID_OTP_PER_PARTY_CITIZEN_PER_MINUTE": "10000",
    "EID_OTP_PER_CITIZEN_PER_DAY": "10000",
}


class SandboxError(RuntimeError):
    """The sandbox could not start: the server is not installed, or a set-up
    step or the server failed (the message ends with its last output)."""


class _PortTaken(SandboxError):
    pass


def _server_command() -> list[str]:
    if importlib.util.find_spec("eid_service") is None:
        raise SandboxError(NOT_INSTALLED)
    # This interpreter's own installation, never another one found on PATH.
    script = Path(sys.executable).parent / "eid-server"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from eid_service.cli import main; sys.exit(main())"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class Sandbox:
    """A local eid server for tests; see the module's documentation.

    Once started: ``target`` (host:port), ``api_key`` and ``party_id`` (the
    relying party "Sandbox Bank", every Verify mode, every attribute),
    ``citizens`` (the demo registry), ``outbox`` (the messages file)."""

    def __init__(
        self,
        *,
        env: Mapping[str, str] | None = None,
        party_name: str = "Sandbox Bank",
        startup_timeout: float = 60.0,
    ) -> None:
        self._overrides = dict(env or {})
        self._party_name = party_name
        self._startup_timeout = startup_timeout
        self._command = _server_command()
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._used = 0  # demo citizens handed out by activate_citizen()
        self.workdir = Path()
        self.target = ""
        self.api_key = ""
        self.party_id = ""
        self.citizens: list[DemoCitizen] = demo_citizens()

    @property
    def outbox(self) -> Path:
        return self.workdir / "outbox.log"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> Self:
        """Set up the folder and database, then serve; returns once SERVING."""
        if self._process is not None:
            return self
        self._folder = tempfile.TemporaryDirectory(prefix="eid-sandbox-")
        self.workdir = Path(self._folder.name)
        atexit.register(self.stop)
        try:
            env = self._environment()
            created = self._set_up(env)
            self.api_key = created.strip().splitlines()[-1]
            found = re.search(r"rp_[0-9a-f]{16}", created)
            self.party_id = found.group(0) if found else ""
            for attempt in range(3):
                try:
                    self._serve(env)
                    break
                except _PortTaken:
                    # Another process took the free port first: pick another.
                    if attempt == 2:
                        raise
                    self.target = ""
                    env = self._environment()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after a grace period) and
        delete its folder. Safe to call twice."""
        atexit.unregister(self.stop)
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None

    def eid_server(self, *args: str, env: Mapping[str, str] | None = None) -> str:
        """Run an ``eid-server`` admin command on the sandbox's database
        (e.g. ``"party", "suspend", sb.party_id``); returns its output."""
        # This environment's own eid-server, with the caller's arguments.
        done = subprocess.run(  # noqa: S603
            [*self._command, *args],
            cwd=self.workdir,
            env=dict(env or self._environment()),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise SandboxError(f"eid-server {args[0]} failed:\n{_tail(done.stdout + done.stderr)}")
        return done.stdout

    def _set_up(self, env: dict[str, str]) -> str:
        """``make run``'s steps and the party, in one interpreter (each
        ``eid-server`` start costs most of a second); returns their output."""
        steps = [
            ["init-dev"],
            ["migrate"],
            ["load-demo"],
            ["party", "create", "--name", self._party_name, "--modes", _ALL_MODES,
             "--rate-limit", "100000", "--citizen-rate-limit", "100000"],
        ]  # fmt: skip
        done = subprocess.run(  # noqa: S603 (this interpreter, our own script)
            [sys.executable, "-c", _SET_UP, json.dumps(steps)],
            cwd=self.workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            raise SandboxError(
                f"setting up the sandbox failed:\n{_tail(done.stdout + done.stderr)}"
            )
        return done.stdout

    def client(self, **kwargs: Any) -> EidClient:
        """An :class:`~eid_client.EidClient` on the sandbox with the party's
        API key (keyword arguments go to the client: ``session_token=`` ...)."""
        kwargs.setdefault("api_key", self.api_key)
        return EidClient(self.target, **kwargs)

    def messages(self) -> list[OutboxMessage]:
        """Every SMS and email "sent" so far, oldest first."""
        return read_outbox(self.outbox)

    def latest_code(self, to: str, *, after: int = 0, timeout: float = 10.0) -> str:
        """The 6-digit code (activation, one-time, lock or unlock) in the newest
        message to the phone or email ``to``, among the messages past the first
        ``after`` (``len(sb.messages())`` before the call that sends it)."""
        return wait_for_code(self.outbox, to, after=after, timeout=timeout)

    def activate_citizen(
        self,
        citizen: DemoCitizen | None = None,
        *,
        password: str,
        phone: str = "0912345678",
    ) -> DemoCitizen:
        """Register and activate ``citizen`` (default: the next demo citizen
        not handed out yet) with ``password``; returns who it was."""
        if citizen is None:
            citizen, self._used = self.citizens[self._used], self._used + 1
        sent = len(self.messages())
        with self.client() as eid:
            eid.register(
                personal_id=citizen.personal_id,
                full_name=citizen.full_name,
                birth_date=citizen.birth_date,
                gender=citizen.gender,
                phone_number=phone,
            )
            code = self.latest_code(phone, after=sent)
            eid.activate(
                personal_id=citizen.personal_id, activation_code=code, new_password=password
            )
        return citizen

    def _environment(self) -> dict[str, str]:
        # The caller's EID_* settings (a real database, perhaps) never leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("EID_")}
        env.update(
            {
                "EID_LISTEN": self.target or f"127.0.0.1:{_free_port()}",
                "EID_DATABASE_URL": f"sqlite:///{self.workdir / 'eid.db'}",
                "EID_KEYS_FILE": str(self.workdir / "keys.json"),
                "EID_OUTBOX_FILE": str(self.outbox),
                "EID_CONSOLE_SENDER": "false",
                "EID_WORKERS": "1",
                "EID_GRACE_SECONDS": "1",
                "EID_LANGUAGE": "en",
                **_RELAXED_LIMITS,
            }
        )
        env.update(self._overrides)
        self.target = env["EID_LISTEN"]
        return env

    def _serve(self, env: dict[str, str]) -> None:
        log = self.workdir / "server.log"
        with log.open("wb") as out:
            self._process = subprocess.Popen(  # noqa: S603 (our own eid-server)
                [*self._command, "serve"],
                cwd=self.workdir,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + self._startup_timeout
        with EidClient(self.target, timeout=1.0, retry=RetryPolicy.off()) as probe:
            while True:
                if self._process.poll() is not None:
                    said = _tail(log.read_text("utf-8", errors="replace"))
                    failure = (
                        _PortTaken if "address already in use" in said.lower() else SandboxError
                    )
                    raise failure(f"eid-server serve exited during start-up:\n{said}")
                try:
                    if probe.health() == "SERVING":
                        return
                except EidError:
                    pass
                if time.monotonic() > deadline:
                    raise SandboxError(
                        f"eid-server was not SERVING within {self._startup_timeout:g} s"
                    )
                time.sleep(0.1)
