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
If the test process is killed instead (SIGKILL, or SIGTERM from a CI's time
limit), a watchdog process beside it stops the server and deletes the folder.
Each sandbox has its own port, folder, keys and database, so pytest-xdist
workers can each start one. Set-up and serving may each take
``startup_timeout`` seconds (60 by default; several sandboxes starting at once
on a small CI runner take tens of seconds). Calls to the sandbox ignore
``http_proxy`` and the like; a client you build yourself on ``sb.target`` needs
``options=[("grpc.enable_http_proxy", 0)]`` where those are set.

Relaxed for tests, unlike production: the limits on registrations and codes
(pass ``env={"EID_REGISTER_PER_SOURCE_PER_HOUR": "20"}``, or any ``EID_*``
setting, to test the real ones) and the party's own rate limits (100,000 calls
a minute, overall and per citizen; ``sb.eid_server("party", "set-limits",
sb.party_id, "--rate-limit", "60", "--citizen-rate-limit", "5")`` sets real
ones). Statuses, ErrorInfo reasons and every other limit (wrong passwords,
approvals) are the server's own.
"""

from __future__ import annotations

import atexit
import datetime
import os
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from eid_client import _sandbox_process as proc
from eid_client._sandbox_data import (
    DemoCitizen,
    OutboxMessage,
    demo_citizens,
    read_outbox,
    wait_for_code,
)
from eid_client._sandbox_process import SandboxError
from eid_client.client import EidClient

__all__ = ["DemoCitizen", "OutboxMessage", "Sandbox", "SandboxError"]

# Tests register and ask for codes far more often than people do.
_RELAXED_LIMITS = {
    "EID_REGISTER_PER_SOURCE_PER_HOUR": "10000",
    "EID_REGISTER_PER_PHONE_PER_DAY": "10000",
    "EID_CODE_REQUESTS_PER_SOURCE_PER_HOUR": "10000",
    "EID_OTP_PER_PARTY_CITIZEN_PER_MINUTE": "10000",
    "EID_OTP_PER_PARTY_CITIZEN_PER_DAY": "10000",
    "EID_OTP_PER_CITIZEN_PER_DAY": "10000",
}


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
        self._command = proc.server_command()
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._watchdog: proc.Watchdog | None = None
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
            # Before anything runs in the folder: a test process killed from
            # here on leaves neither a server nor the folder behind.
            self._watchdog = proc.Watchdog(self.workdir)
            env = self._environment()
            self.api_key, self.party_id = proc.set_up(
                self.workdir, env, self._party_name, self._startup_timeout, self._watchdog
            )
            for attempt in range(3):
                try:
                    self._process = proc.serve(
                        self._command, self.workdir, env, self._startup_timeout, self._watchdog
                    )
                    break
                except proc.PortTaken:
                    if attempt == 2:
                        raise
                    self.target = ""  # another process took it first: pick another
                    env = self._environment()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 seconds) and delete
        its folder. Safe to call twice."""
        atexit.unregister(self.stop)
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.dismiss()
        process, self._process = self._process, None
        if process is not None:
            proc.stop(process)
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None

    def eid_server(self, *args: str) -> str:
        """Run an ``eid-server`` admin command on the sandbox's database
        (e.g. ``"party", "suspend", sb.party_id``); returns its output."""
        return proc.run([*self._command, *args], self.workdir, self._environment(), args[0])

    def client(self, **kwargs: Any) -> EidClient:
        """An :class:`~eid_client.EidClient` on the sandbox with the party's
        API key (keyword arguments go to the client: ``session_token=`` ...).
        It ignores http_proxy and the like: the sandbox is on this machine."""
        kwargs.setdefault("api_key", self.api_key)
        kwargs["options"] = [proc.NO_PROXY, *(kwargs.get("options") or [])]
        return EidClient(self.target, **kwargs)

    def messages(self) -> list[OutboxMessage]:
        """Every SMS and email "sent" so far, oldest first."""
        return read_outbox(self.outbox)

    def latest_code(self, to: str, *, after: int = 0, timeout: float = 10.0) -> str:
        """The 6-digit code (activation, one-time, lock or unlock) in the newest
        message to the phone or email ``to``, among the messages past the first
        ``after`` (``len(sb.messages())`` before the call that sends it)."""
        return wait_for_code(self.outbox, to, after=after, timeout=timeout)

    def portrait(self, citizen: DemoCitizen | str) -> bytes:
        """A capture of a demo citizen's face that matches the portrait the
        sandbox's registry enrolled: the ``portrait`` to :meth:`EidClient.register`
        them with (demo portraits only; ``eid-server demo-portrait``)."""
        pid = citizen if isinstance(citizen, str) else citizen.personal_id
        return (self.workdir / proc.PORTRAITS / f"{pid}.f32").read_bytes()

    def activate_citizen(
        self,
        citizen: DemoCitizen | None = None,
        *,
        password: str,
        phone: str = "0912345678",
    ) -> DemoCitizen:
        """Register and activate ``citizen`` (default: the next demo citizen
        not handed out yet who is old enough to register themselves: 35 of the
        40 are, the others are children) with ``password``; returns who it was.
        Once none is left it raises LookupError."""
        if citizen is None:
            citizen = self._next_adult()
        sent = len(self.messages())
        with self.client() as eid:
            eid.register(
                personal_id=citizen.personal_id,
                full_name=citizen.full_name,
                birth_date=citizen.birth_date,
                gender=citizen.gender,
                phone_number=phone,
                portrait=self.portrait(citizen),
            )
            code = self.latest_code(phone, after=sent)
            eid.activate(
                personal_id=citizen.personal_id, activation_code=code, new_password=password
            )
        return citizen

    def _next_adult(self) -> DemoCitizen:
        # The server's own rule: Register refuses children AGE_BELOW_MINIMUM.
        from eid_service.domain.citizen import MIN_SELF_REGISTRATION_AGE, age_on

        today = datetime.datetime.now(datetime.UTC).date()
        while self._used < len(self.citizens):
            citizen, self._used = self.citizens[self._used], self._used + 1
            if age_on(citizen.birth_date, today) >= MIN_SELF_REGISTRATION_AGE:
                return citizen
        raise LookupError(
            "every demo citizen old enough to register has been handed out by"
            " activate_citizen(): pass citizen= one of sb.citizens not registered yet,"
            " or start another Sandbox (scope='module' or 'function')"
        )

    def _environment(self) -> dict[str, str]:
        # The caller's EID_* settings (a real database, perhaps) never leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("EID_")}
        env.update(
            {
                "EID_LISTEN": self.target or f"127.0.0.1:{proc.free_port()}",
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
