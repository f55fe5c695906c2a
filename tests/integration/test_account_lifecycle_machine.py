"""The account lifecycle as a Hypothesis state machine, through the real gRPC
API of a server on an ephemeral port (SQLite and PostgreSQL).

Each example gets two citizens of its own in the population registry, one
person who is not in it, and two relying parties; rules then register
(matching data or not), resend activation codes, activate (right, wrong, old
or used code), sign in (right or wrong password, from the citizen's device or
a stranger's address), refresh (current or spent refresh token), sign out,
revoke sessions, share by QR (bound to a party or not, various lifetimes),
redeem as a party (once, twice, the wrong party), revoke shares, ask for lock
and unlock codes, lock (signed in, password or code) and unlock (officer, or
code and password), lock and unlock verify modes (for good or for a while),
verify by password and by one-time code, record the citizen's death (the
registry use case an operator runs), move the clock and purge what expired.

A model predicts every answer: the reason of each refusal, what is sent by
SMS, what each party learns. After every step the invariants are checked:
each account's state in the database is the model's (none, PENDING, ACTIVE,
LOCKED, DEACTIVATED); live sessions, shares (each redeemed at most once,
revoked when the model says so) and spent one-time codes are as the model
says; the access history holds exactly the verifications made (ids of the
successful ones, and how many failed, per mode), read from the database and,
when the citizen has a live session, through ListAccessHistory; ListSessions,
ListShares and GetVerifyModeLocks agree; every audit chain of the example's
people verifies, and the whole log at the end of each example (the audit
check use case). No RPC may ever answer INTERNAL, UNKNOWN or DATA_LOSS.

The server's clock is frozen (it moves only when a rule moves it, by a
microsecond per reading so that two codes issued "at once" still have an
order), which makes expiry and fixed-window rate limits exact; its periodic
purge is replaced by a rule that runs the same purge at chosen moments.

`make test` runs 30 examples of up to 30 steps per database (~20 s each);
`make soak` (EID_SOAK=1) runs 600 of up to 50 steps. A failure prints the
steps that lead to it (shrunk: the shortest found) and a
`@reproduce_failure(...)` line: put it above `class Lifecycle` to replay
exactly that run."""

from __future__ import annotations

import itertools
import os
import random
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select, text

import eid_service.app
from eid.v1 import identity_service_pb2 as pb
from eid.v1 import identity_service_pb2_grpc as pb_grpc
from eid_client.client import EidClient
from eid_client.errors import EidError, error_from_rpc_error
from eid_service.domain.account import AccountState
from eid_service.domain.activation import (
    ACCOUNT_CODE_TTL,
    ACTIVATION_CODE_TTL,
    MAX_ACTIVATION_ATTEMPTS,
    MAX_ACTIVATION_CODE_GUESSES,
    MAX_LOCK_CODE_ATTEMPTS,
    RECENT_ACCOUNT_CODES,
)
from eid_service.domain.citizen import Demographics, Gender
from eid_service.domain.credential_policy import MAX_FAILURES_PER_SOURCE, SOURCE_WINDOW
from eid_service.domain.errors import DomainError
from eid_service.domain.personal_id import make_personal_id, province_codes
from eid_service.domain.rate_limits import Limit
from eid_service.domain.share import DEFAULT_SHARE_TTL
from eid_service.store.models import OutboxRow
from eid_service.use_cases.audit_check import verify_audit_chains
from eid_service.use_cases.deceased import DeathRecorded, record_death
from eid_service.use_cases.purge import (
    CODES_KEPT_AFTER_EXPIRY,
    SHARE_KEPT_AFTER_EXPIRY,
    purge_expired,
)
from eid_service.use_cases.sessions import ACCESS_TTL, REFRESH_TTL
from tests.integration.flows import PASSWORD, phone_of, register
from tests.integration.harness import FakeClock, ServerHarness

SOAK = os.environ.get("EID_SOAK") == "1"
FORBIDDEN = frozenset(
    {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}
)
WRONG_PASSWORD = "not the password at all 7"
# The citizen's own phone, and two strangers' addresses (x-forwarded-for).
DEVICE = "198.51.100.7"
STRANGERS = ("203.0.113.9", "203.0.113.66")
SOURCES = (DEVICE, *STRANGERS)
OTHER_PHONE = "0912345678"  # a valid mobile number no citizen here registered
# VERIFICATION_METHOD_ONE_TIME_CODE -> "one_time_code", as the server names modes.
METHOD_NAMES = {
    number: name.removeprefix("VERIFICATION_METHOD_").lower()
    for name, number in pb.VerificationMethod.items()
    if number != pb.VERIFICATION_METHOD_UNSPECIFIED
}
MODES = {name: number for number, name in METHOD_NAMES.items()}
SHARE_STATES = {
    pb.SHARE_STATE_ACTIVE: "active",
    pb.SHARE_STATE_REDEEMED: "redeemed",
    pb.SHARE_STATE_EXPIRED: "expired",
    pb.SHARE_STATE_REVOKED: "revoked",
}
# How far a rule moves the clock: across a minute's rate window, a share's,
# a code's and an access token's lifetime, a day (purges), a refresh token's.
# Short steps are drawn more often, so sessions live through more steps.
CLOCK_STEPS = (
    timedelta(seconds=30),
    timedelta(seconds=30),
    timedelta(seconds=61),
    timedelta(seconds=61),
    timedelta(minutes=6),
    timedelta(minutes=11),
    timedelta(minutes=16),
    timedelta(hours=2),
    timedelta(hours=25),
    timedelta(days=31),
)
_RATE_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class SteppedClock(FakeClock):
    """A frozen clock that moves only when told, plus a microsecond at each
    reading: nothing expires by itself while a test thinks, and two things
    made in one step still have an order. So the server's "now" is always
    just after anything stored at the same nominal time: the model compares
    nominal times with that in mind (a stored time equal to now has passed)."""

    def __init__(self, base: datetime) -> None:
        super().__init__()
        self.base = base
        self._ticks = itertools.count(1)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            tick = next(self._ticks)
        return self.base + self.offset + timedelta(microseconds=tick)

    def nominal(self) -> datetime:
        return self.base + self.offset

    def next_day(self) -> None:
        """On to 12:00:30 of the next day: every example starts at the same
        time of day, so its rate-limit windows fall alike when replayed."""
        now = self.nominal()
        noon = datetime.combine(now.date() + timedelta(days=1), time(12, 0, 30), UTC)
        self.advance(noon - now)


# --- the model -----------------------------------------------------------------


@dataclass
class Code:
    """A one-time code as the server keeps it."""

    value: str
    expires_at: datetime
    attempts: int = 0
    consumed: bool = False


def spend(codes: list[Code], value: str, now: datetime, max_attempts: int) -> bool:
    """The server's rule for activation and verification codes: only the
    newest counts; a wrong one costs it an attempt."""
    if not codes:
        return False
    latest = codes[-1]
    if latest.value != value:
        latest.attempts = min(max_attempts, latest.attempts + 1)
        return False
    if latest.consumed or now >= latest.expires_at or latest.attempts >= max_attempts:
        return False
    latest.consumed = True
    latest.attempts += 1
    return True


def spend_recent(codes: list[Code], value: str, now: datetime, max_attempts: int) -> bool:
    """Lock and unlock codes: any of the few newest, sent after any used one,
    works; a guess that uses none costs each of them an attempt."""
    recent = codes[-RECENT_ACCOUNT_CODES:][::-1]
    for code in recent:
        if code.consumed:
            break
        if code.value == value:
            if now >= code.expires_at or code.attempts >= max_attempts:
                return False
            code.consumed = True
            code.attempts += 1
            return True
    for code in recent:
        code.attempts = min(max_attempts, code.attempts + 1)
    return False


def other_code(codes: list[Code]) -> str:
    """Six digits that are none of these codes."""
    taken = {c.value for c in codes}
    for n in itertools.count(111_111, 7_919):
        if f"{n % 1_000_000:06d}" not in taken:
            return f"{n % 1_000_000:06d}"
    raise AssertionError("unreachable")


@dataclass
class Sess:
    id: str
    access: str
    refresh: str
    access_until: datetime
    refresh_until: datetime
    revoked: bool = False
    spent: list[str] = field(default_factory=list)
    purged: bool = False

    def access_ok(self, now: datetime) -> bool:
        return not self.revoked and not self.purged and now < self.access_until

    def live(self, now: datetime) -> bool:
        return not self.revoked and not self.purged and now < self.refresh_until


@dataclass
class Shr:
    id: str
    token: str
    owner: int
    audience: str | None  # party key
    expires_at: datetime
    redeemed_by: str | None = None
    revoked: bool = False
    purged: bool = False

    def state(self, now: datetime) -> str:
        if self.revoked:
            return "revoked"
        if self.redeemed_by is not None:
            return "redeemed"
        return "expired" if now >= self.expires_at else "active"


@dataclass
class Person:
    demo: Demographics
    in_registry: bool
    state: AccountState | None = None
    deceased: bool = False
    activation: list[Code] = field(default_factory=list)
    lock_codes: list[Code] = field(default_factory=list)
    unlock_codes: list[Code] = field(default_factory=list)
    otp: dict[str, list[Code]] = field(default_factory=dict)
    sessions: list[Sess] = field(default_factory=list)
    modes: dict[str, datetime | None] = field(default_factory=dict)
    # Every Verify the access history must show: (mode, verified, id or "").
    history: list[tuple[str, bool, str]] = field(default_factory=list)
    account_id: str = ""
    # Set at activation; an account deactivated while pending never had one.
    has_password: bool = False

    @property
    def pid(self) -> str:
        return self.demo.personal_id

    @property
    def phone(self) -> str:
        return phone_of(self.demo)[0]

    @property
    def e164(self) -> str:
        return phone_of(self.demo)[1]

    def mode_locked(self, mode: str, now: datetime) -> bool:
        if mode not in self.modes:
            return False
        until = self.modes[mode]
        return until is None or now >= until

    def live_session(self, now: datetime) -> Sess | None:
        return next((s for s in reversed(self.sessions) if s.access_ok(now)), None)

    def all_codes(self) -> dict[str, list[Code]]:
        codes = {
            "activation": self.activation,
            "lock": self.lock_codes,
            "unlock": self.unlock_codes,
        }
        codes["verify"] = [c for party in sorted(self.otp) for c in self.otp[party]]
        return codes


@dataclass
class PartyM:
    key: str  # "bank" / "telco"
    id: str
    api_key: str


@dataclass(frozen=True)
class Refusal:
    code: grpc.StatusCode
    reason: str | None
    message: str


# --- people --------------------------------------------------------------------

_SERIALS = itertools.count(700_000)
_FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi")
_GIVEN = {
    Gender.MALE: ("Văn Minh", "Hữu Nam", "Đức Long", "Quốc Sơn"),
    Gender.FEMALE: ("Thị Lan", "Ngọc Mai", "Thu Trang", "Kim Yến"),
}


def new_person(rng: random.Random) -> Demographics:
    """An adult with a valid ID number no other person in this run has."""
    gender = rng.choice((Gender.MALE, Gender.FEMALE))
    born = date(rng.randint(1950, 2004), rng.randint(1, 12), rng.randint(1, 28))
    province = rng.choice(sorted(province_codes()))
    pid = make_personal_id(province, born, gender, next(_SERIALS) % 1_000_000)
    name = f"{rng.choice(_FAMILY)} {rng.choice(_GIVEN[gender])}"
    return Demographics(pid.value, name, born, gender)


# --- the world the machines share ----------------------------------------------


class World:
    """One server for all examples of a run; each example has its own people
    and parties, so examples do not meet (the database keeps growing, as a
    real one does)."""

    def __init__(self, harness: ServerHarness, clock: SteppedClock) -> None:
        self.harness = harness
        self.clock = clock
        self.channel = grpc.insecure_channel(harness.target)
        self.stub = pb_grpc.IdentityServiceStub(self.channel)
        self.client = EidClient(harness.target)
        self.officer_key = harness.run(
            harness.runtime.uow.atomically(lambda r: r.officers.create("Officer Machine", clock()))
        )[1]
        self.calls: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.rng = random.Random(20240615)

    def close(self) -> None:
        self.client.close()
        self.channel.close()

    def call(
        self,
        rpc: str,
        request: Any,
        *,
        source: str = DEVICE,
        bearer: str | None = None,
        api_key: str | None = None,
        officer_key: str | None = None,
    ) -> Any:
        """The response, or a Refusal; never INTERNAL, UNKNOWN or DATA_LOSS."""
        metadata = [("x-forwarded-for", source)]
        if bearer is not None:
            metadata.append(("authorization", f"Bearer {bearer}"))
        if api_key is not None:
            metadata.append(("x-api-key", api_key))
        if officer_key is not None:
            metadata.append(("x-officer-key", officer_key))
        self.calls[rpc] += 1
        try:
            answer = getattr(self.stub, rpc)(request, timeout=30, metadata=metadata)
        except grpc.RpcError as e:
            error = error_from_rpc_error(e)
            assert error.code not in FORBIDDEN, f"{rpc} answered {error.code.name}: {error}"
            assert error.reason, f"{rpc} refused without an ErrorInfo reason: {error}"
            self.outcomes[f"{rpc} {error.reason}"] += 1
            return Refusal(error.code, error.reason, error.message)
        verdict = {None: "", True: " verified", False: " not verified"}
        self.outcomes[f"{rpc} OK" + verdict[getattr(answer, "verified", None)]] += 1
        return answer

    def outbox_size(self) -> int:
        """Messages in the outbox (only the purge rule removes any)."""
        query = select(func.count()).select_from(OutboxRow)
        with self.harness.runtime.uow.engine.connect() as c:
            return int(c.execute(query).scalar_one())

    def code_rows(self, account_id: str) -> Counter[tuple[str, bool]]:
        """(purpose, consumed) -> how many codes the database holds for the account."""
        with self.harness.runtime.uow.engine.connect() as c:
            rows = c.execute(
                text(
                    "SELECT purpose, consumed_at IS NOT NULL FROM activation_codes"
                    " WHERE account_id = :id"
                ),
                {"id": account_id},
            ).all()
        return Counter((str(p), bool(used)) for p, used in rows)


def expect(answer: Any, reason: str | None, what: str) -> None:
    """The answer is a response (reason None) or a refusal for that reason."""
    if reason is None:
        assert not isinstance(answer, Refusal), f"{what}: expected success, got {answer}"
    else:
        assert isinstance(answer, Refusal), f"{what}: expected {reason}, got success {answer}"
        assert answer.reason == reason, f"{what}: expected {reason}, got {answer}"


def ttl(seconds: int | None) -> duration_pb2.Duration | None:
    return None if seconds is None else duration_pb2.Duration(seconds=seconds)


# --- the machine -----------------------------------------------------------------

PEOPLE = 3  # two in the registry, one not
# Mostly the citizen who starts signed in; the one in the registry without
# an account yet, and the one not in the registry, less often.
people_ix = st.sampled_from((0, 0, 0, 1, 1, 2))
registered_ix = st.sampled_from((0, 0, 1))
any_index = st.integers(0, 1_000)
party_keys = st.sampled_from(("bank", "telco"))


class Lifecycle(RuleBasedStateMachine):
    world: World

    def __init__(self) -> None:
        super().__init__()
        self.w = self.world
        self.h = self.w.harness
        self.people: list[Person] = []
        self.parties: dict[str, PartyM] = {}
        self.shares: list[Shr] = []
        self.attempts: dict[tuple[str, str], tuple[int, datetime | None]] = {}
        self.rates: dict[tuple[str, str, datetime], int] = {}

    # --- helpers ---------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return self.w.clock.nominal()

    def reserve(self, person: Person, source: str) -> bool:
        """A password or code attempt counted for (person, source) before the check."""
        key = (person.pid, source)
        failures, last = self.attempts.get(key, (0, None))
        now = self.now
        if last is None or now - last >= SOURCE_WINDOW:
            self.attempts[key] = (1, now)
            return True
        if failures < MAX_FAILURES_PER_SOURCE:
            self.attempts[key] = (failures + 1, now)
            return True
        return False

    def succeeded(self, person: Person, source: str) -> None:
        key = (person.pid, source)
        _, last = self.attempts[key]
        self.attempts[key] = (0, last)

    def hit(self, limit: Limit, key: str) -> bool:
        now = self.now
        start = _RATE_EPOCH + ((now - _RATE_EPOCH) // limit.window) * limit.window
        k = (limit.name, key, start)
        hits = self.rates.get(k, 0)
        if hits >= limit.hits:
            return False
        self.rates[k] = hits + 1
        return True

    def hit_all(self, *hits: tuple[Limit, str]) -> bool:
        """The server's limits in its order, each counted, or none: those
        counted before one refuses are taken back."""
        for n, (limit, key) in enumerate(hits):
            if not self.hit(limit, key):
                for counted, counted_key in hits[:n]:
                    start = (
                        _RATE_EPOCH + ((self.now - _RATE_EPOCH) // counted.window) * counted.window
                    )
                    self.rates[(counted.name, counted_key, start)] -= 1
                return False
        return True

    def code_limits(self, purpose: str, person: Person, phone: str, source: str) -> bool:
        """The server's limits on asking for a code, in its order: the pair
        (ID number, phone) from this source, then from all sources."""
        limits = self.h.send_limits
        pair = f"{purpose}:{person.pid}:{phone}"
        here = f"{source} {pair}"
        return self.hit_all(
            (limits.code_per_minute, here),
            (limits.code_per_day, here),
            (limits.code_ceiling_per_minute, pair),
            (limits.code_ceiling_per_day, pair),
        )

    def sms_code(self, person: Person, seen: int) -> str:
        return self.h.wait_for_code(person.e164, after=seen)

    def step(self, expected_messages: int, before: int) -> None:
        queued = self.w.outbox_size() - before
        assert queued == expected_messages, f"{queued} messages queued, {expected_messages} due"

    def pick_session(self, person: Person, i: int) -> Sess | None:
        """Mostly a session that still works, sometimes any (ended, expired)."""
        usable = [s for s in person.sessions if s.access_ok(self.now)]
        pool = usable if usable and i % 4 else person.sessions
        return pool[i % len(pool)] if pool else None

    def redeemable_shares_revoked(self, person_ix: int) -> None:
        """Lock and death withdraw every share still redeemable."""
        now = self.now
        for s in self.shares:
            redeemable = not s.revoked and s.redeemed_by is None and now < s.expires_at
            if s.owner == person_ix and redeemable:
                s.revoked = True

    def sessions_ended(self, person: Person) -> None:
        now = self.now
        for s in person.sessions:
            if now < s.refresh_until:
                s.revoked = True

    def add_history(self, person: Person, mode: str, verified: bool, vid: str = "") -> None:
        if person.state is not None:
            person.history.append((mode, verified, vid))

    # --- set-up ----------------------------------------------------------------

    @initialize()
    def setup(self) -> None:
        self.w.clock.next_day()
        rng = self.w.rng
        demos = [new_person(rng) for _ in range(PEOPLE)]
        self.h.add_citizens(demos[: PEOPLE - 1])
        self.people = [Person(d, in_registry=i < PEOPLE - 1) for i, d in enumerate(demos)]
        n = self.w.calls["parties"] = self.w.calls["parties"] + 1
        for key in ("bank", "telco"):
            party, api_key = self.h.create_party(f"{key.title()} {n}")
            self.parties[key] = PartyM(key, party.id, api_key)
        # The first citizen starts signed in, so that most steps act on a
        # live account; the second starts with none.
        self.onboard(0)

    # --- registration and activation ----------------------------------------------

    @rule(i=people_ix, variant=st.sampled_from(("valid", "valid", "wrong-name", "wrong-day")))
    def register(self, i: int, variant: str) -> None:
        p = self.people[i]
        overrides: dict[str, str] = {}
        if variant == "wrong-name":
            overrides["full_name"] = "Đỗ Thị Không Khớp"
        elif variant == "wrong-day":
            born = p.demo.birth_date
            overrides["birth_date"] = born.replace(day=born.day % 28 + 1).isoformat()
        at, seen = self.w.outbox_size(), len(self.h.sender.messages)
        self.w.calls["Register"] += 1
        answer: Any
        try:
            answer = register(self.w.client, p.demo, **overrides)
        except EidError as e:
            answer = Refusal(e.code, e.reason, e.message)
        assert getattr(answer, "code", None) not in FORBIDDEN, f"Register answered {answer}"
        self.w.outcomes[f"Register {getattr(answer, 'reason', None) or 'OK'}"] += 1
        if variant != "valid" or not p.in_registry or p.deceased:
            expect(answer, "REGISTRY_MISMATCH", "register with data the registry does not hold")
            self.step(0, at)
        elif p.state is AccountState.PENDING:
            expect(answer, "ACCOUNT_PENDING", "register again while pending")
        elif p.state is not None:
            expect(answer, "ACCOUNT_ALREADY_EXISTS", "register again")
        else:
            expect(answer, None, "register")
            p.state = AccountState.PENDING
            p.account_id = answer.account.account_id
            code = self.sms_code(p, seen)
            p.activation.append(Code(code, self.now + ACTIVATION_CODE_TTL))
            self.step(1, at)

    @precondition(lambda self: any(p.state is None for p in self.people[: PEOPLE - 1]))
    @rule(i=registered_ix)
    def onboard(self, i: int) -> None:
        """Register, activate with the code sent and sign in on the device:
        the other rules then find an account to work on more often."""
        self.register(i, "valid")
        self.activate(i, "latest", DEVICE)
        self.sign_in(i, right=True, source=DEVICE)

    @rule(i=people_ix, right_phone=st.booleans(), source=st.sampled_from(SOURCES))
    def resend_activation_code(self, i: int, right_phone: bool, source: str) -> None:
        p = self.people[i]
        phone = p.phone if right_phone else OTHER_PHONE
        at, seen = self.w.outbox_size(), len(self.h.sender.messages)
        answer = self.w.call(
            "ResendActivationCode",
            pb.ResendActivationCodeRequest(
                personal_id=p.pid, phone_number=phone, request_id=str(uuid.uuid4())
            ),
            source=source,
        )
        if not self.code_limits("activation", p, phone, source):
            expect(answer, "TOO_MANY_REQUESTS", "resend beyond its limits")
            self.step(0, at)
            return
        expect(answer, None, "resend")
        if right_phone and p.state is AccountState.PENDING:
            p.activation.append(Code(self.sms_code(p, seen), self.now + ACTIVATION_CODE_TTL))
            self.step(1, at)
        else:
            self.step(0, at)

    @rule(
        i=people_ix,
        which=st.sampled_from(("latest", "latest", "wrong", "older", "any-used")),
        source=st.sampled_from(SOURCES),
    )
    def activate(self, i: int, which: str, source: str) -> None:
        p = self.people[i]
        codes = p.activation
        used = [c for c in codes if c.consumed]
        if which == "latest" and codes:
            value = codes[-1].value
        elif which == "older" and len(codes) > 1:
            value = codes[-2].value
        elif which == "any-used" and used:
            value = used[-1].value
        else:
            value = other_code(codes)
        answer = self.w.call(
            "Activate",
            pb.ActivateRequest(
                personal_id=p.pid,
                activation_code=value,
                new_password=PASSWORD,
                request_id=str(uuid.uuid4()),
            ),
            source=source,
        )
        now = self.now
        if not self.reserve(p, source):
            expect(answer, "TOO_MANY_FAILED_ATTEMPTS", "activate after too many failures")
        elif p.state is None:
            expect(answer, "ACTIVATION_CODE_INVALID", "activate without an account")
        elif p.state is not AccountState.PENDING or not codes:
            reason = (
                "ACTIVATION_CODE_ALREADY_USED"
                if any(c.consumed and c.value == value for c in codes)
                else "ACTIVATION_CODE_INVALID"
            )
            expect(answer, reason, f"activate a {p.state.value} account")
        else:
            # Any of the few newest codes works, each until its own expiry
            # (b2971bd: a resend no longer voids the code being typed).
            recent = codes[-RECENT_ACCOUNT_CODES:][::-1]
            right = next((c for c in recent if c.value == value), None)
            if right is None:
                counted = [c for c in recent if c.attempts < MAX_ACTIVATION_CODE_GUESSES]
                for c in counted:
                    c.attempts += 1
                if counted:
                    expect(answer, "ACTIVATION_CODE_INVALID", "activate with a wrong code")
                else:
                    expect(answer, "ACTIVATION_ATTEMPTS_EXCEEDED", "a wrong code past the attempts")
            elif right.attempts >= MAX_ACTIVATION_CODE_GUESSES:
                expect(answer, "ACTIVATION_ATTEMPTS_EXCEEDED", "the right code too late")
            elif now >= right.expires_at:
                expect(answer, "ACTIVATION_CODE_EXPIRED", "an expired code")
            else:
                self.succeeded(p, source)
                expect(answer, None, "activate")
                right.consumed = True
                right.attempts += 1
                p.state = AccountState.ACTIVE
                p.has_password = True
                assert answer.account.state == pb.ACCOUNT_STATE_ACTIVE

    # --- sessions ----------------------------------------------------------------

    @rule(
        i=people_ix,
        right=st.booleans(),
        source=st.sampled_from((DEVICE, DEVICE, *STRANGERS)),
    )
    def sign_in(self, i: int, right: bool, source: str) -> None:
        p = self.people[i]
        answer = self.w.call(
            "SignIn",
            pb.SignInRequest(personal_id=p.pid, password=PASSWORD if right else WRONG_PASSWORD),
            source=source,
        )
        if not self.reserve(p, source):
            expect(answer, "TOO_MANY_FAILED_ATTEMPTS", "sign in after too many failures")
            return
        proved = right and p.has_password
        if not proved:
            expect(answer, "INVALID_CREDENTIALS", "sign in without the password")
            return
        self.succeeded(p, source)
        if p.state is AccountState.LOCKED:
            expect(answer, "ACCOUNT_LOCKED", "sign in to a locked account")
        elif p.state is AccountState.DEACTIVATED:
            expect(answer, "CITIZEN_DECEASED", "sign in to a deceased citizen's account")
        else:
            expect(answer, None, "sign in")
            now = self.now
            p.sessions.append(
                Sess(
                    answer.session_id,
                    answer.session_token,
                    answer.refresh_token,
                    now + ACCESS_TTL,
                    now + REFRESH_TTL,
                )
            )

    @precondition(lambda self: any(p.sessions for p in self.people))
    @rule(i=registered_ix, s=any_index, spent=st.booleans())
    def refresh(self, i: int, s: int, spent: bool) -> None:
        p = self.people[i]
        session = self.pick_session(p, s)
        if session is None:
            return
        token = session.spent[-1] if spent and session.spent else session.refresh
        answer = self.w.call(
            "RefreshSession",
            pb.RefreshSessionRequest(refresh_token=token, request_id=str(uuid.uuid4())),
        )
        now = self.now
        if token == session.refresh and session.live(now):
            expect(answer, None, "refresh")
            assert answer.session_id == session.id
            session.spent.append(session.refresh)
            session.access, session.refresh = answer.session_token, answer.refresh_token
            session.access_until, session.refresh_until = now + ACCESS_TTL, now + REFRESH_TTL
        elif token in session.spent and not session.purged:
            expect(answer, "REFRESH_TOKEN_REUSED", "a spent refresh token")
            if now < session.refresh_until:
                session.revoked = True
        else:
            expect(answer, "REFRESH_TOKEN_INVALID", "a dead session's refresh token")

    @precondition(lambda self: any(p.sessions for p in self.people))
    @rule(i=registered_ix, s=any_index)
    def sign_out(self, i: int, s: int) -> None:
        p = self.people[i]
        session = self.pick_session(p, s)
        if session is None:
            return
        answer = self.w.call(
            "SignOut", pb.SignOutRequest(request_id=str(uuid.uuid4())), bearer=session.access
        )
        if session.access_ok(self.now):
            expect(answer, None, "sign out")
            session.revoked = True
        else:
            expect(answer, "SESSION_INVALID", "sign out of a dead session")

    @precondition(lambda self: any(len(p.sessions) > 1 for p in self.people))
    @rule(i=registered_ix, s=any_index, t=any_index)
    def revoke_session(self, i: int, s: int, t: int) -> None:
        p = self.people[i]
        if len(p.sessions) < 2:
            return
        caller, target = self.pick_session(p, s), self.pick_session(p, t)
        assert caller is not None and target is not None
        answer = self.w.call(
            "RevokeSession",
            pb.RevokeSessionRequest(session_id=target.id, request_id=str(uuid.uuid4())),
            bearer=caller.access,
        )
        now = self.now
        if not caller.access_ok(now):
            expect(answer, "SESSION_INVALID", "revoke from a dead session")
        elif target.live(now):
            expect(answer, None, "revoke a session")
            target.revoked = True
        else:
            expect(answer, "SESSION_NOT_FOUND", "revoke a dead session")

    # --- QR shares ----------------------------------------------------------------

    @precondition(lambda self: any(p.sessions for p in self.people))
    @rule(
        i=registered_ix,
        s=any_index,
        audience=st.sampled_from((None, "bank", "telco")),
        seconds=st.sampled_from((None, 30, 3600, 86_400)),
    )
    def share(self, i: int, s: int, audience: str | None, seconds: int | None) -> None:
        p = self.people[i]
        session = self.pick_session(p, s)
        if session is None:
            return
        answer = self.w.call(
            "ShareViaQR",
            pb.ShareViaQRRequest(
                attributes=[pb.ATTRIBUTE_FULL_NAME, pb.ATTRIBUTE_BIRTH_DATE],
                audience_party_id="" if audience is None else self.parties[audience].id,
                ttl=ttl(seconds),
                image_format=pb.QR_IMAGE_FORMAT_NONE,
                request_id=str(uuid.uuid4()),
            ),
            bearer=session.access,
        )
        if not session.access_ok(self.now):
            expect(answer, "SESSION_INVALID", "share from a dead session")
            return
        expect(answer, None, "share")
        lifetime = DEFAULT_SHARE_TTL if seconds is None else timedelta(seconds=seconds)
        self.shares.append(Shr(answer.share_id, answer.token, i, audience, self.now + lifetime))

    @precondition(lambda self: any(p.sessions for p in self.people))
    @rule(i=registered_ix, s=any_index, audience=st.sampled_from((None, "bank")), party=party_keys)
    def share_and_redeem(self, i: int, s: int, audience: str | None, party: str) -> None:
        """A QR shown and scanned at once (the common case)."""
        before = len(self.shares)
        self.share(i, s, audience, None)
        if len(self.shares) > before:
            self.redeem(len(self.shares) - 1, party)

    @precondition(lambda self: bool(self.shares))
    @rule(k=any_index, party=party_keys)
    def redeem(self, k: int, party: str) -> None:
        """Any share again: redeemed, revoked, expired, locked, the wrong party."""
        share = self.shares[k % len(self.shares)]
        owner = self.people[share.owner]
        p = self.parties[party]
        answer = self.w.call(
            "Verify",
            pb.VerifyRequest(
                qr_share=pb.QrShareCredential(token=share.token), request_id=str(uuid.uuid4())
            ),
            api_key=p.api_key,
        )
        now = self.now
        redeemable = (
            share.redeemed_by is None
            and not share.revoked
            and share.audience in (None, party)
            and not share.purged
        )
        if now >= share.expires_at:
            # Judged from the signed token before any lookup: purged or not.
            reason: str | None = "SHARE_EXPIRED"
        elif redeemable:
            reason = None
        elif share.purged:
            reason = "SHARE_NOT_FOUND"
        elif owner.state is AccountState.DEACTIVATED:
            reason = "CITIZEN_DECEASED"
        elif share.audience not in (None, party):
            reason = "SHARE_AUDIENCE_MISMATCH"
        elif share.revoked:
            reason = "ACCOUNT_LOCKED" if owner.state is AccountState.LOCKED else "SHARE_REVOKED"
        else:
            reason = "SHARE_ALREADY_REDEEMED"
        expect(answer, reason, f"redeem a {share.state(now)} share as {party}")
        if reason is None:
            assert answer.verified and answer.method == pb.VERIFICATION_METHOD_QR_SHARE
            assert answer.attributes.full_name == owner.demo.full_name
            assert answer.attributes.birth_date == owner.demo.birth_date.isoformat()
            assert not answer.attributes.personal_id, "released an attribute not shared"
            share.redeemed_by = party
            self.add_history(owner, "qr_share", True, answer.verification_id)
        elif not share.purged:
            self.add_history(owner, "qr_share", False)

    @precondition(lambda self: bool(self.shares))
    @rule(k=any_index, s=any_index)
    def revoke_share(self, k: int, s: int) -> None:
        share = self.shares[k % len(self.shares)]
        p = self.people[share.owner]
        session = self.pick_session(p, s)
        if session is None:
            return
        answer = self.w.call(
            "RevokeShare",
            pb.RevokeShareRequest(share_id=share.id, request_id=str(uuid.uuid4())),
            bearer=session.access,
        )
        if not session.access_ok(self.now):
            expect(answer, "SESSION_INVALID", "revoke a share from a dead session")
        elif share.purged:
            expect(answer, "SHARE_NOT_FOUND", "revoke a purged share")
        else:
            expect(answer, None, "revoke a share")
            # Only a share still redeemable is revoked; a spent, expired or
            # revoked one is answered as it is.
            if share.state(self.now) == "active":
                share.revoked = True
            assert SHARE_STATES[answer.share.state] == share.state(self.now)

    # --- lock and unlock ------------------------------------------------------------

    @rule(
        i=people_ix,
        purpose=st.sampled_from(("lock", "unlock")),
        right_phone=st.booleans(),
        source=st.sampled_from(SOURCES),
    )
    def send_account_code(self, i: int, purpose: str, right_phone: bool, source: str) -> None:
        p = self.people[i]
        phone = p.phone if right_phone else OTHER_PHONE
        at, seen = self.w.outbox_size(), len(self.h.sender.messages)
        answer = self.w.call(
            "SendAccountCode",
            pb.SendAccountCodeRequest(
                purpose=pb.ACCOUNT_CODE_PURPOSE_LOCK
                if purpose == "lock"
                else pb.ACCOUNT_CODE_PURPOSE_UNLOCK,
                personal_id=p.pid,
                phone_number=phone,
                request_id=str(uuid.uuid4()),
            ),
            source=source,
        )
        if not self.code_limits(purpose, p, phone, source):
            expect(answer, "TOO_MANY_REQUESTS", f"a {purpose} code beyond its limits")
            self.step(0, at)
            return
        expect(answer, None, f"ask for a {purpose} code")
        eligible = AccountState.ACTIVE if purpose == "lock" else AccountState.LOCKED
        if right_phone and p.state is eligible:
            codes = p.lock_codes if purpose == "lock" else p.unlock_codes
            codes.append(Code(self.sms_code(p, seen), self.now + ACCOUNT_CODE_TTL))
            self.step(1, at)
        else:
            self.step(0, at)

    def _locked_now(self, i: int) -> None:
        p = self.people[i]
        p.state = AccountState.LOCKED
        self.sessions_ended(p)
        self.redeemable_shares_revoked(i)

    @rule(
        i=people_ix,
        proof=st.sampled_from(("session", "password", "code")),
        right=st.booleans(),
        source=st.sampled_from(SOURCES),
        s=any_index,
    )
    def lock(self, i: int, proof: str, right: bool, source: str, s: int) -> None:
        p = self.people[i]
        at = self.w.outbox_size()
        request = pb.LockAccountRequest(request_id=str(uuid.uuid4()))
        bearer = None
        session = self.pick_session(p, s)
        if proof == "session":
            if session is None:
                return
            bearer = session.access
        elif proof == "password":
            request.password.personal_id = p.pid
            request.password.password = PASSWORD if right else WRONG_PASSWORD
        else:
            request.one_time_code.personal_id = p.pid
            codes = p.lock_codes
            value = other_code(codes)
            if right and codes:
                # Mostly the newest, sometimes one of the 3 before it (the 3 newest work).
                back = 1 + (s % min(len(codes), RECENT_ACCOUNT_CODES + 1) if s % 2 else 0)
                value = codes[-back].value
            request.one_time_code.one_time_code = value
        answer = self.w.call("LockAccount", request, source=source, bearer=bearer)
        now = self.now
        if proof == "session":
            assert session is not None
            if not session.access_ok(now):
                expect(answer, "SESSION_INVALID", "lock from a dead session")
                return
        elif not self.reserve(p, source):
            expect(answer, "TOO_MANY_FAILED_ATTEMPTS", f"lock by {proof} after failures")
            return
        elif proof == "password":
            if not (right and p.has_password):
                expect(answer, "INVALID_CREDENTIALS", "lock with a wrong password")
                return
            self.succeeded(p, source)
        else:
            value = request.one_time_code.one_time_code
            if p.state is None or not spend_recent(
                p.lock_codes, value, now, MAX_LOCK_CODE_ATTEMPTS
            ):
                expect(answer, "ONE_TIME_CODE_INVALID", "lock with a wrong code")
                return
            self.succeeded(p, source)
        if p.state is AccountState.DEACTIVATED:
            expect(answer, "CITIZEN_DECEASED", "lock a deceased citizen's account")
        elif p.state is AccountState.LOCKED:
            expect(answer, None, "lock a locked account")
            assert not answer.newly_locked
        elif p.state is AccountState.PENDING:
            expect(answer, "ACCOUNT_NOT_ACTIVE", "lock a pending account")
        else:
            expect(answer, None, f"lock by {proof}")
            assert answer.newly_locked and answer.account.state == pb.ACCOUNT_STATE_LOCKED
            self._locked_now(i)
            self.step(1, at)  # the notice to the phone

    @rule(
        i=people_ix,
        by=st.sampled_from(("officer", "citizen")),
        right_code=st.booleans(),
        right_password=st.booleans(),
        source=st.sampled_from(SOURCES),
    )
    def unlock(self, i: int, by: str, right_code: bool, right_password: bool, source: str) -> None:
        p = self.people[i]
        at = self.w.outbox_size()
        request = pb.UnlockAccountRequest(request_id=str(uuid.uuid4()))
        if by == "officer":
            request.officer.personal_id = p.pid
            answer = self.w.call("UnlockAccount", request, officer_key=self.w.officer_key)
            if p.state is None:
                expect(answer, "ACCOUNT_NOT_FOUND", "an officer unlocks no account")
                return
        else:
            code = (
                p.unlock_codes[-1].value
                if right_code and p.unlock_codes
                else other_code(p.unlock_codes)
            )
            request.citizen.personal_id = p.pid
            request.citizen.one_time_code = code
            request.citizen.password = PASSWORD if right_password else WRONG_PASSWORD
            answer = self.w.call("UnlockAccount", request, source=source)
            if not self.reserve(p, source):
                expect(answer, "TOO_MANY_FAILED_ATTEMPTS", "unlock after failures")
                return
            if not (right_password and p.has_password):
                expect(answer, "INVALID_CREDENTIALS", "unlock with a wrong password")
                return
            self.succeeded(p, source)
            if not spend_recent(p.unlock_codes, code, self.now, MAX_ACTIVATION_ATTEMPTS):
                expect(answer, "ONE_TIME_CODE_INVALID", "unlock with a wrong code")
                return
        if p.state is AccountState.LOCKED:
            expect(answer, None, f"unlock by {by}")
            assert answer.account.state == pb.ACCOUNT_STATE_ACTIVE
            p.state = AccountState.ACTIVE
            self.step(1, at)
        elif p.state is AccountState.DEACTIVATED:
            expect(answer, "CITIZEN_DECEASED", "unlock a deceased citizen's account")
        else:
            expect(answer, "ACCOUNT_NOT_LOCKED", "unlock an account that is not locked")

    @precondition(lambda self: any(p.state is AccountState.LOCKED for p in self.people))
    @rule(by=st.sampled_from(("officer", "citizen")), source=st.sampled_from(SOURCES))
    def unlock_a_locked_account(self, by: str, source: str) -> None:
        """The locked citizen goes to an officer, or asks for an unlock code
        and unlocks with it and the password."""
        i = next(i for i, p in enumerate(self.people) if p.state is AccountState.LOCKED)
        if by == "citizen":
            self.send_account_code(i, "unlock", right_phone=True, source=source)
        self.unlock(i, by, right_code=True, right_password=True, source=source)

    # --- verify modes and verification ------------------------------------------------

    @precondition(lambda self: any(p.live_session(self.now) for p in self.people))
    @rule(mode=st.sampled_from(("password", "one_time_code")), party=party_keys)
    def lock_a_mode_then_verify(self, mode: str, party: str) -> None:
        """The citizen locks a mode, then a party tries it with the right credential."""
        i = next(i for i, p in enumerate(self.people) if p.live_session(self.now))
        self.change_mode_lock(i, 1, mode, "lock", 1)
        if mode == "password":
            self.verify_password(i, party, right=True)
        else:
            self.request_otp(i, party)
            self.verify_otp(i, party, right=True)

    @precondition(lambda self: any(p.sessions for p in self.people))
    @rule(
        i=registered_ix,
        s=any_index,
        mode=st.sampled_from(("password", "one_time_code", "demographic")),
        change=st.sampled_from(("lock", "unlock", "unlock-for")),
        minutes=st.sampled_from((1, 10, 120)),
    )
    def change_mode_lock(self, i: int, s: int, mode: str, change: str, minutes: int) -> None:
        p = self.people[i]
        session = self.pick_session(p, s)
        if session is None:
            return
        rid = str(uuid.uuid4())
        if change == "lock":
            answer = self.w.call(
                "LockVerifyMode",
                pb.LockVerifyModeRequest(mode=MODES[mode], request_id=rid),
                bearer=session.access,
            )
        else:
            request = pb.UnlockVerifyModeRequest(mode=MODES[mode], request_id=rid)
            if change == "unlock-for":
                request.unlock_for.seconds = minutes * 60
            answer = self.w.call("UnlockVerifyMode", request, bearer=session.access)
        if not session.access_ok(self.now):
            expect(answer, "SESSION_INVALID", "change a mode lock from a dead session")
            return
        expect(answer, None, f"{change} {mode}")
        if change == "lock":
            p.modes[mode] = None
        elif change == "unlock":
            p.modes.pop(mode, None)
        else:
            p.modes[mode] = self.now + timedelta(minutes=minutes)
        self.check_mode_locks(p, answer.modes)

    def check_mode_locks(self, p: Person, modes: Any) -> None:
        now = self.now
        shown = {METHOD_NAMES[m.mode]: m.locked for m in modes}
        wanted = {mode: p.mode_locked(mode, now) for mode in shown}
        assert p.modes.keys() <= shown.keys()
        assert shown == wanted, f"verify mode locks {shown}, model {wanted}"

    @rule(i=people_ix, party=party_keys, right=st.booleans())
    def verify_password(self, i: int, party: str, right: bool) -> None:
        p = self.people[i]
        pm = self.parties[party]
        answer = self.w.call(
            "Verify",
            pb.VerifyRequest(
                password=pb.PasswordCredential(
                    personal_id=p.pid, password=PASSWORD if right else WRONG_PASSWORD
                ),
                request_id=str(uuid.uuid4()),
            ),
            api_key=pm.api_key,
        )
        source = f"party:{pm.id}"
        if not self.reserve(p, source):
            expect(answer, "TOO_MANY_FAILED_ATTEMPTS", "verify after too many failures")
            self.add_history(p, "password", False)
            return
        proved = right and p.has_password
        if not proved:
            expect(answer, None, "verify a wrong password")
            assert not answer.verified
            self.add_history(p, "password", False)
            return
        self.succeeded(p, source)
        if p.state is AccountState.LOCKED:
            reason: str | None = "ACCOUNT_LOCKED"
        elif p.state is AccountState.DEACTIVATED:
            reason = "CITIZEN_DECEASED"
        elif p.mode_locked("password", self.now):
            reason = "AUTH_MODE_LOCKED"
        else:
            reason = None
        expect(answer, reason, "verify the right password")
        if reason is None:
            assert answer.verified and answer.attributes.full_name == p.demo.full_name
            self.add_history(p, "password", True, answer.verification_id)
        else:
            self.add_history(p, "password", False)

    @rule(i=people_ix, party=party_keys)
    def request_otp(self, i: int, party: str) -> None:
        p = self.people[i]
        pm = self.parties[party]
        at, seen = self.w.outbox_size(), len(self.h.sender.messages)
        answer = self.w.call(
            "RequestOtp",
            pb.RequestOtpRequest(personal_id=p.pid, request_id=str(uuid.uuid4())),
            api_key=pm.api_key,
        )
        limits = self.h.send_limits
        if not (
            self.hit_all(
                (limits.otp_per_party_citizen, f"{pm.id}:{p.pid}"),
                (limits.otp_per_party_citizen_day, f"{pm.id}:{p.pid}"),
                (limits.otp_per_citizen, p.pid),
            )
        ):
            expect(answer, "TOO_MANY_REQUESTS", "one-time codes beyond their limits")
            self.step(0, at)
            return
        expect(answer, None, "request a one-time code")
        if p.state is AccountState.ACTIVE and not p.mode_locked("one_time_code", self.now):
            code = self.sms_code(p, seen)
            p.otp.setdefault(party, []).append(Code(code, self.now + ACCOUNT_CODE_TTL))
            self.step(1, at)
        else:
            self.step(0, at)

    @rule(i=people_ix, party=party_keys, right=st.booleans())
    def verify_otp(self, i: int, party: str, right: bool) -> None:
        p = self.people[i]
        pm = self.parties[party]
        codes = p.otp.get(party, [])
        value = codes[-1].value if right and codes else other_code(codes)
        answer = self.w.call(
            "Verify",
            pb.VerifyRequest(
                one_time_code=pb.OneTimeCodeCredential(personal_id=p.pid, code=value),
                request_id=str(uuid.uuid4()),
            ),
            api_key=pm.api_key,
        )
        if p.state is None or not spend(codes, value, self.now, MAX_ACTIVATION_ATTEMPTS):
            expect(answer, None, "verify a wrong one-time code")
            assert not answer.verified
            self.add_history(p, "one_time_code", False)
            return
        if p.state is AccountState.LOCKED:
            reason: str | None = "ACCOUNT_LOCKED"
        elif p.state is AccountState.DEACTIVATED:
            reason = "CITIZEN_DECEASED"
        elif p.mode_locked("one_time_code", self.now):
            reason = "AUTH_MODE_LOCKED"
        else:
            reason = None
        expect(answer, reason, "verify the right one-time code")
        if reason is None:
            assert answer.verified
            self.add_history(p, "one_time_code", True, answer.verification_id)
        else:
            self.add_history(p, "one_time_code", False)

    # --- death, time, purge ----------------------------------------------------------

    @rule(i=registered_ix)
    def record_death(self, i: int) -> None:
        p = self.people[i]
        died_on = self.now.date()
        done: DeathRecorded | DomainError
        try:
            done = self.h.run(
                record_death(self.h.runtime.uow, self.h.runtime.context, p.pid, died_on)
            )
        except DomainError as e:
            done = e
        if isinstance(done, DomainError):  # only for a death recorded already
            assert p.deceased and p.state in (None, AccountState.DEACTIVATED), repr(done)
            assert done.reason == "CITIZEN_NOT_FOUND", repr(done)
            return
        assert done.newly_recorded == (not p.deceased)
        p.deceased = True
        if p.state in (None, AccountState.DEACTIVATED):
            assert done.deactivated_account_id is None
            return
        assert done.deactivated_account_id == p.account_id
        p.state = AccountState.DEACTIVATED
        self.sessions_ended(p)
        self.redeemable_shares_revoked(i)

    @rule(delta=st.sampled_from(CLOCK_STEPS))
    def move_clock(self, delta: timedelta) -> None:
        self.w.clock.advance(delta)

    @rule()
    def purge(self) -> None:
        now = self.now
        self.h.run(purge_expired(self.h.runtime.uow, self.w.clock()))
        for s in self.shares:
            if s.expires_at <= now - SHARE_KEPT_AFTER_EXPIRY:
                s.purged = True
        for p in self.people:
            for session in p.sessions:
                if session.refresh_until <= now:
                    session.purged = True
            for codes in (p.activation, p.lock_codes, p.unlock_codes, *p.otp.values()):
                codes[:] = [c for c in codes if c.expires_at > now - CODES_KEPT_AFTER_EXPIRY]

    # --- invariants ----------------------------------------------------------------

    @invariant()
    def database_agrees(self) -> None:
        if not self.people:
            return
        now = self.now

        def read(r: Any) -> list[tuple[Any, ...]]:
            out = []
            for p in self.people:
                cred = r.accounts.credential(p.pid)
                if cred.account_id is None:
                    out.append((cred, None, None, None, None))
                    continue
                out.append(
                    (
                        cred,
                        r.receipts.history(cred.account_id, None, 10_000),
                        r.shares.page_of(cred.account_id, None, 10_000),
                        r.sessions.list_live(cred.account_id, now, None, 10_000),
                        r.audit.check_chain(cred.subject),
                    )
                )
            return out

        for i, (p, (cred, history, shares, live, chain)) in enumerate(
            zip(self.people, self.h.in_uow(read), strict=True)
        ):
            assert cred.state == p.state, f"person {i}: account {cred.state}, model {p.state}"
            if cred.account_id is None:
                continue
            assert chain.broken is None, f"person {i}: audit chain broken {chain.broken}"
            # The access history: exactly the verifications made.
            made = Counter((mode, ok) for mode, ok, _ in p.history)
            seen = Counter((rec.method.value, rec.verified) for rec in history)
            assert seen == made, f"person {i}: history {dict(seen)}, made {dict(made)}"
            ids = {rec.verification_id for rec in history if rec.verified}
            assert ids == {vid for _, ok, vid in p.history if ok}
            assert all(rec.receipt for rec in history if rec.verified)
            # Shares: each redeemed at most once, revoked as the model says.
            mine = {s.id: s for s in self.shares if s.owner == i and not s.purged}
            stored = {g.id: g for g in shares}
            assert stored.keys() == mine.keys(), f"person {i}: shares differ"
            for sid, g in stored.items():
                assert g.redeem_count == (0 if mine[sid].redeemed_by is None else 1), sid
                assert (g.revoked_at is not None) == mine[sid].revoked, sid
            # Sessions: a locked or deceased account has none.
            assert {s.id for s in live} == {s.id for s in p.sessions if s.live(now)}
            if p.state is not AccountState.ACTIVE:
                assert not live, f"person {i} ({p.state}) has live sessions"
                assert all(g.state(now).value != "active" for g in shares), (
                    f"person {i} ({p.state}) has a redeemable share"
                )
            # Codes: each used once at most, as many used as the model used.
            rows = self.w.code_rows(cred.account_id)
            for purpose, codes in p.all_codes().items():
                assert rows[(purpose, True)] == sum(c.consumed for c in codes), purpose
                assert rows[(purpose, False)] == sum(not c.consumed for c in codes), purpose

    @invariant()
    def the_citizen_sees_the_same(self) -> None:
        """Through the API, with a live session: history, sessions, shares, modes."""
        now = self.now
        for i, p in enumerate(self.people):
            session = p.live_session(now)
            if session is None:
                continue
            records = self._all_pages(
                "ListAccessHistory", pb.ListAccessHistoryRequest, "records", session
            )
            made = Counter((mode, ok) for mode, ok, _ in p.history)
            seen = Counter((METHOD_NAMES[r.method], r.verified) for r in records)
            assert seen == made, f"person {i}: ListAccessHistory {dict(seen)}, made {dict(made)}"
            assert {r.verification_id for r in records if r.verified} == {
                vid for _, ok, vid in p.history if ok
            }
            sessions = self._all_pages("ListSessions", pb.ListSessionsRequest, "sessions", session)
            assert {s.session_id for s in sessions} == {s.id for s in p.sessions if s.live(now)}
            assert [s.session_id for s in sessions if s.current] == [session.id]
            shares = self._all_pages("ListShares", pb.ListSharesRequest, "shares", session)
            model = {s.id: s.state(now) for s in self.shares if s.owner == i and not s.purged}
            assert {s.share_id: SHARE_STATES[s.state] for s in shares} == model
            modes = self.w.call(
                "GetVerifyModeLocks", pb.GetVerifyModeLocksRequest(), bearer=session.access
            )
            expect(modes, None, "read the verify mode locks")
            self.check_mode_locks(p, modes.modes)

    def _all_pages(self, rpc: str, request_type: Any, items: str, session: Sess) -> list[Any]:
        found: list[Any] = []
        token = ""
        while True:
            page = self.w.call(
                rpc, request_type(page_size=100, page_token=token), bearer=session.access
            )
            expect(page, None, rpc)
            found.extend(getattr(page, items))
            token = page.next_page_token
            if not token:
                return found

    def teardown(self) -> None:
        report = self.h.run(verify_audit_chains(self.h.runtime.uow))
        assert report.intact, f"audit log broken: {report.broken}"


# --- the tests -----------------------------------------------------------------


@pytest.fixture
def world(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    async def no_periodic_purge(runtime: Any, stop: Any) -> None:
        # The machine's purge rule runs the same purge at moments it chooses.
        await stop.wait()

    monkeypatch.setattr(eid_service.app, "_purge_periodically", no_periodic_purge)
    # Half a minute into a minute: a microsecond per clock reading never
    # crosses a rate limit's window.
    base = datetime.now(UTC).replace(second=30, microsecond=0)
    clock = SteppedClock(base)
    harness = ServerHarness(database_url)
    harness.clock = clock
    harness.start()
    w = World(harness, clock)
    try:
        yield w
    finally:
        w.close()
        harness.stop()


def _run(world: World, examples: int, steps: int) -> None:
    machine = type("LifecycleMachine", (Lifecycle,), {"world": world})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            database=None,
            print_blob=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    outcomes = sorted(world.outcomes.items())
    print(f"{examples} examples of up to {steps} steps; calls {dict(world.calls)}")
    print("outcomes: " + ", ".join(f"{k}: {v}" for k, v in outcomes))


# ~20 s per database; the time limit leaves room to shrink a failure to its shortest steps.
@pytest.mark.timeout(600)
def test_the_account_lifecycle_keeps_its_invariants(world: World) -> None:
    _run(world, examples=30, steps=30)


@pytest.mark.soak
@pytest.mark.timeout(3600)
@pytest.mark.skipif(not SOAK, reason="long: `make soak` runs it")
def test_the_account_lifecycle_at_length(world: World) -> None:
    _run(world, examples=600, steps=50)
