"""A crash harness: `eid-server serve --workers 2` SIGKILLed at random moments
under mixed load, restarted, and held to what it acknowledged.

Client threads live citizens' lives against the real server: Register (a
demo registry citizen), Activate with the code the SMS gateway received,
SignIn, ShareViaQR, redemption of the share by relying parties through Verify,
and sometimes LockAccount. Some steps race on purpose: two devices activate
one code, two parties redeem one share, one party sends one redemption twice
at once, two devices lock one account. Every call that changes something
carries a request id and is sent again, unchanged, until it gets an answer
(as a careful client does across a crash), so every write the server
committed is eventually acknowledged and the clients' ledger must match the
database exactly. Meanwhile the main thread kills the server's whole process
group (seeded RNG, seed printed) and restarts it, again and again.

Messages leave through real senders to receivers the test runs: the SMS
gateway and the SMTP server of tests/integration/receivers.py, and the first
party's status webhook (tests/integration/event_receiver.py), told when a
citizen it verified is locked. The final checks are in crash_checks.py."""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import grpc
from aiosmtpd.smtp import SMTP, Envelope, Session
from google.protobuf.message import Message

import eid_service
from eid.v1 import identity_service_pb2 as pb
from eid_client.client import EidClient
from eid_client.errors import EidError
from eid_client.retry import RetryPolicy
from eid_service.demo import demo_citizens, synthetic_citizens
from eid_service.domain.citizen import Demographics, age_on
from eid_service.domain.credential_policy import MAX_FAILURES_PER_SOURCE
from tests.e2e.conftest import BIN, Deployment, prepare, wait_serving
from tests.integration.event_receiver import EventReceiver, Post, event_receiver
from tests.integration.flows import PASSWORD, register
from tests.integration.receivers import (
    WEBHOOK_SECRET,
    Hook,
    Mailbox,
    SmsGateway,
    code_in,
    sms_gateway,
    smtp_server,
)

T = TypeVar("T")

# A second device that activates the same code sets another password: the
# one that wins is the one SignIn must then accept.
SECOND_PASSWORD = PASSWORD + " from the other phone"
# No call may go unanswered this long, kills and restarts included: a hang.
OP_DEADLINE_SECONDS = 60.0
# How long an activation SMS may take (a killed worker's claim lapses first).
CODE_WAIT_SECONDS = 45.0
# Clients reconnect within a few tenths of a second of a restart (gRPC's
# default backoff grows to minutes while the server is down).
FAST_RECONNECT = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 300),
)
# Failures that tell nothing about the call's fate: the server was killed or
# restarting, or it asked to come back (admission limits, nothing done).
IN_DOUBT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
BUSY_REASONS = frozenset({"PASSWORD_CHECKS_BUSY", "SERVER_BUSY"})
# ...and these, without a reason of eid's, only when a kill fell inside the call.
CUT_OFF = frozenset({grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL})


@dataclass(frozen=True)
class CrashPlan:
    kills: int
    seed: int
    clients: int = 6
    # Load between a restart (health SERVING) and the next kill, seconds.
    load_seconds: tuple[float, float] = (0.05, 1.2)
    # Synthetic citizens added to the demo registry (every Register takes one).
    citizens: int = 150
    # A killed worker's deliveries are taken over after this (a send may take half).
    claim_seconds: int = 3

    @classmethod
    def from_env(cls, kills: int, **overrides: Any) -> CrashPlan:
        """EID_CRASH_SEED replays a run's choices (thread timing still varies)."""
        given = os.environ.get("EID_CRASH_SEED")
        seed = int(given) if given else random.SystemRandom().randrange(2**31)
        return cls(kills=kills, seed=seed, **overrides)


# --- receivers that note when each message arrived ---------------------------------


@dataclass
class TimedGateway(SmsGateway):
    arrivals: list[tuple[float, Hook]] = field(default_factory=list)

    def answer(self, hook: Hook) -> int:
        with self.lock:
            self.arrivals.append((time.monotonic(), hook))
        return super().answer(hook)

    def timed(self) -> list[tuple[float, Hook]]:
        with self.lock:
            return list(self.arrivals)

    def activation_code(self, e164: str, timeout: float = CODE_WAIT_SECONDS) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for hook in self.hooks():
                if hook.payload["to"] == e164 and hook.payload["kind"] == "activation_code":
                    return code_in(hook.payload["body"])
            time.sleep(0.02)
        raise AssertionError(f"no activation SMS within {timeout:.0f} s")


@dataclass
class TimedEvents(EventReceiver):
    """A relying party's status webhook; arrivals with monotonic and wall time
    (the wall time judges each attempt's signature)."""

    arrivals: list[tuple[float, datetime, Post]] = field(default_factory=list)

    def answer(self, post: Post) -> int:
        with self.lock:
            self.arrivals.append((time.monotonic(), datetime.now(UTC), post))
        return super().answer(post)

    def timed(self) -> list[tuple[float, datetime, Post]]:
        with self.lock:
            return list(self.arrivals)


@dataclass(frozen=True)
class Mail:
    arrived: float
    message_id: str
    to: str
    subject: str
    body: str


@dataclass
class TimedMailbox(Mailbox):
    """Mail as accepted, with when. No logins here: Mailbox's look at one
    logs aiosmtpd's deprecation warning for every mail, thousands in a soak."""

    arrivals: list[Mail] = field(default_factory=list)

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        mail = message_from_bytes(envelope.original_content or b"", policy=policy.default)
        assert isinstance(mail, EmailMessage)
        self.mails.append(mail)
        body = mail.get_body(("plain",))
        self.arrivals.append(
            Mail(
                time.monotonic(),
                str(mail["Message-ID"]),
                str(mail["To"]),
                str(mail["Subject"]),
                "" if body is None else str(body.get_content()),
            )
        )
        return "250 OK"

    def timed(self) -> list[Mail]:
        return list(self.arrivals)  # appended on aiosmtpd's one loop thread


# --- the server's own code ------------------------------------------------------------


def source_stamps() -> dict[Path, float]:
    """When each module of the server was last written. Every restart loads
    the code anew: in a shared working tree, code edited during a run means
    the later restarts ran other code than the first."""
    root = Path(eid_service.__file__).parent
    return {p: p.stat().st_mtime for p in root.rglob("*.py")}


def changed_since(stamps: dict[Path, float]) -> list[str]:
    now = source_stamps()
    root = Path(eid_service.__file__).parent
    return sorted(
        str(p.relative_to(root)) for p in stamps.keys() | now.keys() if stamps.get(p) != now.get(p)
    )


# --- the SQLite file ---------------------------------------------------------------


def sqlite_path(url: str) -> Path | None:
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


def integrity(path: Path) -> list[tuple[Any, ...]]:
    """PRAGMA integrity_check's rows ([("ok",)] when the file is sound)."""
    db = sqlite3.connect(path, timeout=30)
    try:
        return db.execute("PRAGMA integrity_check").fetchall()
    finally:
        db.close()


# --- the server, killed and restarted ------------------------------------------------


class Server:
    """`eid-server serve --workers 2` in a session of its own, so one SIGKILL
    to the group takes the workers with the supervisor."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.log = workdir / "server.log"
        self.kill_times: list[float] = []
        self._epoch = 0
        self._lock = threading.Lock()
        self.deployment = Deployment(workdir, env["EID_LISTEN"], env, self._spawn())

    @property
    def target(self) -> str:
        return self.deployment.target

    @property
    def epoch(self) -> int:
        """How many kills so far."""
        with self._lock:
            return self._epoch

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as log:
            return subprocess.Popen(
                [str(BIN / "eid-server"), "serve", "--workers", "2"],
                cwd=self.workdir,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )

    def wait_serving(self) -> None:
        try:
            wait_serving(self.deployment)
        except AssertionError as e:
            raise AssertionError(f"{e}; its log ends:\n{self.log_tail()}") from None

    def kill(self) -> None:
        process = self.deployment.server
        with self._lock:
            self._epoch += 1
            self.kill_times.append(time.monotonic())
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        _wait_group_gone(process.pid)

    def restart(self) -> None:
        self.deployment.server = self._spawn()
        self.wait_serving()

    def stop(self) -> None:
        process = self.deployment.server
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # workers left behind, if any

    def log_tail(self, lines: int = 30) -> str:
        text = self.log.read_text("utf-8", errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _wait_group_gone(pgid: int, timeout: float = 10.0) -> None:
    """Until every process of the killed group has exited, so the next
    server finds the port free (zombies count: their sockets are closed,
    and init may take a second to reap them)."""
    deadline = time.monotonic() + timeout
    while any(_running_in_group(pgid)):
        assert time.monotonic() < deadline, "the killed server's workers are still running"
        time.sleep(0.01)


def _running_in_group(pgid: int) -> Iterator[int]:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text("ascii")
        except (FileNotFoundError, ProcessLookupError):
            continue
        fields = stat.rpartition(")")[2].split()
        # After the command: state, ppid, pgrp.
        if int(fields[2]) == pgid and fields[0] not in {"Z", "X"}:
            yield int(entry.name)


# --- what the clients were told -------------------------------------------------


@dataclass
class Acked:
    """One call with a request id and its definitive answer, and how to send
    the very same request again (for the replay check)."""

    rpc: str
    request_id: str
    answer: Message | EidError
    again: Callable[[], Message]
    # Sends of it a kill cut off (the server died with the call in flight).
    cut_offs: int = 0


def _locked_out_by_kills(call: Acked) -> bool:
    """A password is counted as an attempt before it is compared and the count
    taken back after (so concurrent guesses cannot outrun the budget); a kill
    in between leaves the count standing, like a failure. A call cut off as
    many times as a source may fail can find its source out of tries: that is
    the policy working, not a broken rule (and the citizen's other sources,
    and their session, still work)."""
    return (
        outcome(call.answer) == "TOO_MANY_FAILED_ATTEMPTS"
        and call.cut_offs >= MAX_FAILURES_PER_SOURCE
    )


def outcome(answer: Message | EidError) -> str:
    """ "OK", or the refusal's reason (its code when it has none)."""
    if isinstance(answer, EidError):
        return answer.reason or answer.code.name
    return "OK"


@dataclass
class ShareLife:
    issued: Acked
    token: str
    share_id: str
    # Redemptions: (party index, the call).
    redemptions: list[tuple[int, Acked]] = field(default_factory=list)


@dataclass
class Life:
    """One citizen, as the clients saw them."""

    index: int
    citizen: Demographics = field(repr=False)
    national: str = field(repr=False)
    e164: str = field(repr=False)
    email: str = field(repr=False)
    registered: Acked | None = None
    activations: list[Acked] = field(default_factory=list)
    password: str | None = field(default=None, repr=False)
    sessions: list[pb.SignInResponse] = field(default_factory=list, repr=False)
    shares: list[ShareLife] = field(default_factory=list)
    locks: list[Acked] = field(default_factory=list)

    @property
    def account_id(self) -> str:
        assert self.registered is not None
        answer = self.registered.answer
        assert isinstance(answer, pb.RegisterResponse)
        return answer.account.account_id

    @property
    def locked(self) -> bool:
        return any(isinstance(a.answer, pb.LockAccountResponse) for a in self.locks)


@dataclass
class Party:
    party_id: str
    api_key: str = field(repr=False)


class Ledger:
    """Every life, every answer counted per RPC, and whatever broke a rule
    while the load ran (an unexpected refusal, a race with two winners)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.lives: list[Life] = []
        self.acked: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        # Calls sent more than once (the server was down, busy or killed
        # during one), and those a kill cut off in flight.
        self.in_doubt: Counter[str] = Counter()
        self.cut_off: Counter[str] = Counter()
        self.problems: list[str] = []

    def add(self, life: Life) -> None:
        with self._lock:
            self.lives.append(life)

    def count(self, tally: Counter[str], key: str) -> None:
        with self._lock:
            tally[key] += 1

    def problem(self, what: str) -> None:
        with self._lock:
            self.problems.append(what)


# --- the load -----------------------------------------------------------------------


def registrable(extra: int) -> list[Demographics]:
    """Adults of the demo registry, then `extra` synthetic ones (what
    `eid-server load-demo --synthetic extra` adds)."""
    today = datetime.now(UTC).date()
    adults = [c for c in demo_citizens() if age_on(c.birth_date, today) >= 18]
    return adults + synthetic_citizens(extra)


class Load:
    def __init__(
        self,
        server: Server,
        plan: CrashPlan,
        gateway: TimedGateway,
        parties: list[Party],
        citizens: list[Demographics],
        ledger: Ledger,
    ) -> None:
        self.server = server
        self.plan = plan
        self.gateway = gateway
        self.parties = parties
        self.ledger = ledger
        self.stop = threading.Event()
        self._citizens = iter(enumerate(citizens))
        self._next_lock = threading.Lock()
        self.pool_ran_out = False

    # -- plumbing --

    def client(self, *, api_key: str | None = None, session_token: str | None = None) -> EidClient:
        """A new connection per call: every attempt after a restart reconnects at once."""
        return EidClient(
            self.server.target,
            api_key=api_key,
            session_token=session_token,
            timeout=10,
            retry=RetryPolicy.off(),
            options=FAST_RECONNECT,
        )

    def persist(self, rpc: str, send: Callable[[], T]) -> T | EidError:
        """Sends the same request until it gets an answer: the answer, or the
        refusal it got. A failure that leaves the call's fate unknown is sent
        again; a call with no answer for OP_DEADLINE_SECONDS is a hang."""
        return self._persist(rpc, send)[0]

    def _persist(self, rpc: str, send: Callable[[], T]) -> tuple[T | EidError, int]:
        """`persist`, and how many of its sends a kill cut off."""
        give_up = time.monotonic() + OP_DEADLINE_SECONDS
        resent = cut_off = False
        cut_offs = 0
        while True:
            epoch = self.server.epoch
            try:
                answer: T | EidError = send()
            except EidError as error:
                if not self._in_doubt(error, epoch):
                    answer = error
                else:
                    resent = True
                    if self.server.epoch != epoch:
                        cut_off = True
                        cut_offs += 1
                    if time.monotonic() > give_up:
                        raise AssertionError(
                            f"{rpc} got no answer for {OP_DEADLINE_SECONDS:.0f} s (last:"
                            f" {error.code.name} {error.reason}); the server's log ends:\n"
                            f"{self.server.log_tail()}"
                        ) from error
                    time.sleep(0.05)
                    continue
            break
        ledger = self.ledger
        if isinstance(answer, EidError):
            ledger.count(ledger.refused, f"{rpc} {answer.reason or answer.code.name}")
        else:
            ledger.count(ledger.acked, rpc)
        if resent:
            ledger.count(ledger.in_doubt, rpc)
        if cut_off:
            ledger.count(ledger.cut_off, rpc)
        return answer, cut_offs

    def _in_doubt(self, error: EidError, epoch: int) -> bool:
        if error.reason is not None:
            return error.code in IN_DOUBT and error.reason in BUSY_REASONS
        if error.code in IN_DOUBT:
            return True
        return error.code in CUT_OFF and self.server.epoch != epoch

    def acked(self, rpc: str, request_id: str, send: Callable[[], Message]) -> Acked:
        answer, cut_offs = self._persist(rpc, send)
        return Acked(rpc, request_id, answer, send, cut_offs)

    def _next_citizen(self) -> tuple[int, Demographics] | None:
        with self._next_lock:
            found = next(self._citizens, None)
            if found is None:
                self.pool_ran_out = True
            return found

    # -- the clients --

    def run_client(self, number: int) -> None:
        rng = random.Random(self.plan.seed * 1000 + number)
        own: list[Life] = []
        with ThreadPoolExecutor(1) as other_device:
            while not self.stop.is_set():
                chosen = self._next_citizen()
                if chosen is not None:
                    life = self._life(rng, other_device, *chosen)
                    own.append(life)
                    continue
                # The registry ran out: more shares for this client's unlocked citizens.
                usable = [x for x in own if x.password is not None and not x.locked]
                if not usable:
                    return
                self._sign_in_and_share(rng, other_device, rng.choice(usable))

    def _life(
        self, rng: random.Random, other: ThreadPoolExecutor, index: int, citizen: Demographics
    ) -> Life:
        # Phones and emails of our own making: distinct for every citizen.
        life = Life(
            index,
            citizen,
            national=f"09{index:08d}",
            e164=f"+849{index:08d}",
            email=f"citizen{index}@example.vn" if index % 2 else "",
        )
        self.ledger.add(life)
        rid = f"reg-{index}"

        def register_again() -> Message:
            with self.client() as app:
                return register(
                    app,
                    citizen,
                    phone_number=life.national,
                    email=life.email,
                    request_id=rid,
                )

        life.registered = self.acked("Register", rid, register_again)
        if not isinstance(life.registered.answer, pb.RegisterResponse):
            self.ledger.problem(f"Register refused: {outcome(life.registered.answer)}")
            return life
        code = self.gateway.activation_code(life.e164)
        self._activate(rng, other, life, code)
        if life.password is None:
            return life
        self._sign_in_and_share(rng, other, life)
        return life

    def _activate(
        self, rng: random.Random, other: ThreadPoolExecutor, life: Life, code: str
    ) -> None:
        pid = life.citizen.personal_id

        def activation(rid: str, password: str) -> Callable[[], Message]:
            def send() -> Message:
                with self.client() as app:
                    return app.activate(
                        personal_id=pid, activation_code=code, new_password=password, request_id=rid
                    )

            return send

        first = activation(f"act-{life.index}-a", PASSWORD)
        if rng.random() < 0.3:
            # Two devices with the same code at once: one wins, one is told it is used.
            second = activation(f"act-{life.index}-b", SECOND_PASSWORD)
            later = other.submit(self.acked, "Activate", f"act-{life.index}-b", second)
            life.activations = [
                self.acked("Activate", f"act-{life.index}-a", first),
                later.result(),
            ]
        else:
            life.activations = [self.acked("Activate", f"act-{life.index}-a", first)]
        won = [a for a in life.activations if isinstance(a.answer, pb.ActivateResponse)]
        lost = [a.answer for a in life.activations if isinstance(a.answer, EidError)]
        if len(won) != 1 or any(e.reason != "ACTIVATION_CODE_ALREADY_USED" for e in lost):
            outcomes = [outcome(a.answer) for a in life.activations]
            self.ledger.problem(f"Activate race of account {life.account_id}: {outcomes}")
            return
        life.password = PASSWORD if won[0].request_id.endswith("-a") else SECOND_PASSWORD

    def _sign_in_and_share(self, rng: random.Random, other: ThreadPoolExecutor, life: Life) -> None:
        assert life.password is not None
        pid, password = life.citizen.personal_id, life.password

        def sign_in() -> pb.SignInResponse:
            with self.client() as app:
                return app.sign_in(personal_id=pid, password=password)

        signed_in, cut_offs = self._persist("SignIn", sign_in)
        if isinstance(signed_in, EidError):
            call = Acked("SignIn", "", signed_in, sign_in, cut_offs)
            if not _locked_out_by_kills(call):
                self.ledger.problem(
                    f"SignIn of account {life.account_id} refused: {signed_in.reason}"
                )
            return
        life.sessions.append(signed_in)
        token = signed_in.session_token
        for _ in range(rng.randint(1, 3)):
            if self.stop.is_set() and rng.random() < 0.5:
                break
            self._share(rng, other, life, token)
        if rng.random() < 0.3:
            self._lock(rng, other, life, token)

    def _share(
        self, rng: random.Random, other: ThreadPoolExecutor, life: Life, session: str
    ) -> None:
        rid = f"share-{life.index}-{len(life.shares)}"

        def issue() -> Message:
            with self.client(session_token=session) as app:
                return app.share_via_qr(
                    attributes=["full_name", "birth_date"],
                    ttl=timedelta(minutes=30),
                    request_id=rid,
                )

        issued = self.acked("ShareViaQR", rid, issue)
        if not isinstance(issued.answer, pb.ShareViaQRResponse):
            self.ledger.problem(f"ShareViaQR refused: {outcome(issued.answer)}")
            return
        share = ShareLife(issued, issued.answer.token, issued.answer.share_id)
        life.shares.append(share)
        pick = rng.random()
        if pick < 0.15:
            return  # shown, never scanned
        if pick < 0.45:
            # Two parties scan the same QR at once: one redeems it, one is refused.
            later = other.submit(self._redeem, share, 1, f"{rid}-p1")
            self._redeem(share, 0, f"{rid}-p0")
            later.result()
            self._one_winner(share)
        elif pick < 0.6:
            # One party sends its redemption twice at once (a retry racing the
            # first attempt): both get the one answer.
            later = other.submit(self._redeem, share, 0, f"{rid}-p0")
            self._redeem(share, 0, f"{rid}-p0")
            later.result()
            answers = [a.answer for _, a in share.redemptions]
            if (
                not all(isinstance(a, pb.VerifyResponse) for a in answers)
                or answers[0] != (answers[1])
            ):
                outcomes = [outcome(a) for a in answers]
                self.ledger.problem(f"share {share.share_id} redeemed twice: {outcomes}")
        else:
            self._redeem(share, rng.randrange(len(self.parties)), f"{rid}-p0")
            self._one_winner(share)

    def _redeem(self, share: ShareLife, party: int, rid: str) -> None:
        api_key = self.parties[party].api_key

        def send() -> Message:
            with self.client(api_key=api_key) as verifier:
                return verifier.redeem_share(share.token, request_id=rid)

        done = self.acked("Verify", rid, send)
        share.redemptions.append((party, done))

    def _one_winner(self, share: ShareLife) -> None:
        answers = [a.answer for _, a in share.redemptions]
        won = [a for a in answers if isinstance(a, pb.VerifyResponse) and a.verified]
        lost = [outcome(a) for a in answers if not isinstance(a, pb.VerifyResponse)]
        if len(won) != 1 or any(reason != "SHARE_ALREADY_REDEEMED" for reason in lost):
            outcomes = [outcome(a) for a in answers]
            self.ledger.problem(f"share {share.share_id} redemptions: {outcomes}")

    def _lock(
        self, rng: random.Random, other: ThreadPoolExecutor, life: Life, session: str
    ) -> None:
        pid, password = life.citizen.personal_id, life.password
        assert password is not None

        def by_password() -> Message:
            with self.client() as app:
                return app.lock_account(
                    personal_id=pid, password=password, request_id=f"lock-{life.index}-pw"
                )

        def by_session() -> Message:
            with self.client(session_token=session) as app:
                return app.lock_account(request_id=f"lock-{life.index}-s")

        if rng.random() < 0.4:
            # The lost phone's owner locks from a laptop while the phone does too.
            later = other.submit(self.acked, "LockAccount", f"lock-{life.index}-s", by_session)
            life.locks = [self.acked("LockAccount", f"lock-{life.index}-pw", by_password)]
            life.locks.append(later.result())
        else:
            life.locks = [self.acked("LockAccount", f"lock-{life.index}-pw", by_password)]
        answers = [a.answer for a in life.locks]
        newly = [a for a in answers if isinstance(a, pb.LockAccountResponse) and a.newly_locked]
        # The loser is told the account was locked already, or, when the
        # password lock committed first (the session lock cut off by a kill
        # and sent again, or simply slower), that its session has ended: the
        # lock ended it.
        losers_ok = all(
            isinstance(a.answer, pb.LockAccountResponse)
            or (a.request_id.endswith("-s") and outcome(a.answer) == "SESSION_INVALID")
            or _locked_out_by_kills(a)
            for a in life.locks
        )
        # One lock took, unless kills left no try to the only one sent.
        winners = 0 if all(_locked_out_by_kills(a) for a in life.locks) else 1
        if len(newly) != winners or not losers_ok:
            outcomes = [outcome(a) for a in answers]
            self.ledger.problem(f"LockAccount of account {life.account_id}: {outcomes}")


# --- one whole run -------------------------------------------------------------------


@dataclass
class Run:
    plan: CrashPlan
    server: Server
    gateway: TimedGateway
    mailbox: TimedMailbox
    # The first party's status webhook (the second has none).
    events: TimedEvents
    parties: list[Party]
    ledger: Ledger
    database_url: str
    started: float
    load_seconds: float = 0.0
    # SQLite: PRAGMA integrity_check on the file each kill left, before the restart.
    checked_after_kills: int = 0


def _party(d: Deployment, name: str, webhook: str = "") -> Party:
    out = d.admin(
        "party", "create", "--name", name, "--rate-limit", "100000", "--citizen-rate-limit", "10000"
    )
    found = re.search(r"rp_[0-9a-f]{16}", out)
    assert found is not None, "party create printed no party id"
    if webhook:
        d.admin("party", "webhook", found.group(0), "--url", webhook)
    return Party(found.group(0), out.strip().splitlines()[-1])


@contextlib.contextmanager
def crash_run(workdir: Path, database_url: str, plan: CrashPlan) -> Iterator[Run]:
    """Receivers, `make run`'s set-up on `database_url`, two relying
    parties, the server, the load and `plan.kills` kills; yields the run with
    the server up and the load stopped, for the checks; stops it all after."""
    print(f"\ncrash harness: seed {plan.seed} (EID_CRASH_SEED={plan.seed} to replay), {plan}")
    started = time.monotonic()
    with (
        sms_gateway(TimedGateway()) as gw,
        smtp_server(TimedMailbox()) as box,
        event_receiver(TimedEvents()) as events,
    ):
        assert isinstance(gw, TimedGateway) and isinstance(box, TimedMailbox)
        assert isinstance(events, TimedEvents)
        env = prepare(
            workdir,
            EID_DATABASE_URL=database_url,
            EID_LOG_LEVEL="WARNING",
            EID_OUTBOX_FILE="",
            EID_SMS_WEBHOOK_URL=gw.url,
            EID_SMS_WEBHOOK_SECRET=WEBHOOK_SECRET,
            EID_SMTP_HOST=box.host,
            EID_SMTP_PORT=str(box.port),
            EID_SMTP_FROM="eid <no-reply@eid.test>",
            EID_SMTP_STARTTLS="false",
            EID_OUTBOX_CLAIM_SECONDS=str(plan.claim_seconds),
            EID_OUTBOX_RETRY_BASE_SECONDS="0.2",
            EID_OUTBOX_RETRY_MAX_SECONDS="1",
            EID_REGISTER_PER_SOURCE_PER_HOUR="1000000",
        )
        server = Server(workdir, env)
        ledger = Ledger()
        try:
            d = server.deployment
            # While the server starts: more citizens, and two parties, the
            # first told of its citizens' locks on its webhook.
            with ThreadPoolExecutor(3) as admin:
                more = admin.submit(d.admin, "load-demo", "--synthetic", str(plan.citizens))
                bank = admin.submit(_party, d, "Crash Bank", events.url("/bank"))
                clinic = admin.submit(_party, d, "Crash Clinic")
                more.result()
                parties = [bank.result(), clinic.result()]
            server.wait_serving()
            run = Run(plan, server, gw, box, events, parties, ledger, database_url, started)
            citizens = registrable(plan.citizens)
            load = Load(server, plan, gw, parties, citizens, ledger)
            _drive(run, load)
            yield run
        finally:
            server.stop()


def _drive(run: Run, load: Load) -> None:
    """The load on `plan.clients` threads while the main thread kills and restarts."""
    rng = random.Random(run.plan.seed)
    began = time.monotonic()
    failures: list[BaseException] = []

    def client(number: int) -> None:
        try:
            load.run_client(number)
        except BaseException as e:  # reported by the main thread
            failures.append(e)
            load.stop.set()

    threads = [
        threading.Thread(target=client, args=(n,), name=f"crash-client-{n}", daemon=True)
        for n in range(run.plan.clients)
    ]
    for t in threads:
        t.start()
    try:
        for kill in range(1, run.plan.kills + 1):
            if failures or (load.pool_ran_out and not any(t.is_alive() for t in threads)):
                break
            time.sleep(rng.uniform(*run.plan.load_seconds))
            run.server.kill()
            if (path := sqlite_path(run.database_url)) is not None:
                found = integrity(path)
                assert found == [("ok",)], f"PRAGMA integrity_check after a kill: {found[:10]}"
                run.checked_after_kills += 1
            run.server.restart()
            if kill % 10 == 0:
                acked = sum(run.ledger.acked.values())
                took = time.monotonic() - began
                print(f"  {kill} kills in {took:.0f} s, {acked} calls acknowledged", flush=True)
        # A last stretch of load on the restarted server, then every client
        # finishes the citizen it is on.
        time.sleep(rng.uniform(*run.plan.load_seconds))
    finally:
        load.stop.set()
        for t in threads:
            t.join(OP_DEADLINE_SECONDS + CODE_WAIT_SECONDS)
    run.load_seconds = time.monotonic() - began
    if failures:
        raise failures[0]
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"clients still waiting for answers: {stuck}"
    assert len(run.server.kill_times) == run.plan.kills, (
        f"only {len(run.server.kill_times)} kills: the registry of {run.plan.citizens}"
        " synthetic citizens ran out"
    )
