"""PostgreSQL stops under load and starts again (issue 15, "Survive").

A real `eid-server serve --workers 2` runs on a PostgreSQL cluster of the
test's own (tests/private_postgres.py; the shared one on 5432 is never
touched), migrated, with the demo registry. Client threads keep Register,
Verify, SignIn and ShareViaQR going with 5 s deadlines, each call sent once.
The cluster is stopped (`pg_ctl stop -m fast`, then, in the second test,
`-m immediate`: every PostgreSQL process quits at once, as in a crash) and
started again. What a client sees:

- while the database is down, every call is refused at once (well under 2 s,
  never a hang until the deadline) with UNAVAILABLE and the stable reason
  STORE_UNAVAILABLE, and health keeps answering SERVING;
- no call ever ends INTERNAL, UNKNOWN or DEADLINE_EXCEEDED;
- once PostgreSQL is back, every kind of call succeeds again within a few
  seconds, from the same worker processes (none died or was replaced);
- every acknowledged write is there afterwards (registrations, shares,
  sessions, verifications in the citizen's access history, one activation
  SMS each), a share made before the outage is redeemed after it, and of the
  refused writes at most those that were in flight as the database went or
  came back can have happened.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from eid_client.client import EidClient
from eid_client.errors import EidError
from eid_client.retry import RetryPolicy
from eid_service.demo import demo_citizens, portrait_capture
from eid_service.domain.citizen import Demographics, age_on
from tests.e2e.conftest import BIN, prepare
from tests.e2e.served import Served
from tests.integration.flows import PASSWORD, phone_of
from tests.private_postgres import PrivateCluster, find_bindir

pytestmark = pytest.mark.e2e

DEADLINE = 5.0  # each call's
FAST = 2.0  # a refused call answers sooner than this
RECOVERY = 5.0  # after PostgreSQL accepts connections again, every kind of call works by then
OUTAGE = 1.5  # PostgreSQL stays down at least this long
WAIT = 10.0  # for the load to reach a point (a few calls of each kind)
REASON = "STORE_UNAVAILABLE"
OPERATIONS = ("Register", "Verify", "SignIn", "ShareViaQR")
# Register works through the demo registry's adults (29 besides the citizen
# the other calls are about), one at a time, paced so that two tests do not
# use them all up.
REGISTER_PACE = 0.3
NOT_VERIFIED = "not verified"


@dataclass(frozen=True)
class Call:
    operation: str
    started: float
    ended: float
    code: grpc.StatusCode
    reason: str | None
    # What the call wrote, if acknowledged: a personal id, share, session or verification id.
    wrote: str = ""

    @property
    def ok(self) -> bool:
        return self.code is grpc.StatusCode.OK

    @property
    def seconds(self) -> float:
        return self.ended - self.started


@dataclass
class Ledger:
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)

    def add(self, call: Call) -> None:
        with self.changed:
            self.calls.append(call)
            self.changed.notify_all()

    def snapshot(self) -> list[Call]:
        with self.lock:
            return list(self.calls)

    def wait_until(self, what: str, wanted: Callable[[Call], bool], count: int) -> None:
        """Until every kind of call has `count` calls that are `wanted` (each
        call looked at once: the threads record thousands)."""
        seen = dict.fromkeys(OPERATIONS, 0)
        looked = 0
        give_up = time.monotonic() + WAIT
        with self.changed:
            while True:
                for call in self.calls[looked:]:
                    seen[call.operation] += wanted(call)
                looked = len(self.calls)
                if min(seen.values()) >= count:
                    return
                left = give_up - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"not within {WAIT} s: {what}\n{_summary(self.calls)}")
                self.changed.wait(left)


def _summary(calls: list[Call]) -> str:
    seen: dict[tuple[str, str, str | None], int] = {}
    for c in calls:
        key = (c.operation, c.code.name, c.reason)
        seen[key] = seen.get(key, 0) + 1
    return "\n".join(f"{k}: {n}" for k, n in sorted(seen.items()))


@dataclass
class Setting:
    cluster: PrivateCluster
    served: Served
    workdir: Path
    api_key: str
    lan: Demographics
    newcomers: list[Demographics]
    worker_pids: set[int]


def _adults(today: date) -> list[Demographics]:
    return [c for c in demo_citizens() if age_on(c.birth_date, today) >= 18]


def _sms(workdir: Path) -> list[dict[str, str]]:
    """What the development SMS sender wrote (var/outbox.log), oldest first."""
    outbox = workdir / "var" / "outbox.log"
    lines = outbox.read_text("utf-8").splitlines() if outbox.exists() else []
    return [json.loads(line) for line in lines]


def _codes_sent(workdir: Path, citizen: Demographics) -> list[str]:
    """The 6-digit codes texted to the citizen's phone."""
    e164 = phone_of(citizen)[1]
    found = (re.search(r"\b(\d{6})\b", m["body"]) for m in _sms(workdir) if m["to"] == e164)
    return [m.group(1) for m in found if m is not None]


def _first_code(workdir: Path, citizen: Demographics) -> str:
    give_up = time.monotonic() + 10
    while not (codes := _codes_sent(workdir, citizen)):
        assert time.monotonic() < give_up, "no activation SMS"
        time.sleep(0.05)  # a file another process appends to: nothing to wait on
    return codes[0]


@pytest.fixture(scope="module")
def setting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setting]:
    bindir, why = find_bindir()
    if bindir is None:
        pytest.skip(why)
    cluster = PrivateCluster(bindir)
    served: Served | None = None
    try:
        cluster.init()
        cluster.start()
        workdir = tmp_path_factory.mktemp("outage")
        env = prepare(
            workdir,
            EID_DATABASE_URL=cluster.create_database("eid"),
            EID_LOG_LEVEL="INFO",
            EID_LOG_FORMAT="text",
            # Every Register comes from 127.0.0.1 (the default allows 20 an hour).
            EID_REGISTER_PER_SOURCE_PER_HOUR="1000",
        )
        served = Served(workdir, env, workers=2)
        pids = served.serving_pids(2)
        created = subprocess.run(
            [
                str(BIN / "eid-server"),
                *("party", "create", "--name", "Outage Bank"),
                *("--rate-limit", "100000", "--citizen-rate-limit", "100000"),
            ],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        api_key = created.stdout.strip().splitlines()[-1]
        lan, *newcomers = _adults(datetime.now(UTC).date())
        with EidClient(served.target) as app:
            app.register(
                personal_id=lan.personal_id,
                full_name=lan.full_name,
                birth_date=lan.birth_date,
                gender=lan.gender.value,
                phone_number=phone_of(lan)[0],
                portrait=portrait_capture(lan.personal_id),
            )
            code = _first_code(workdir, lan)
            app.activate(personal_id=lan.personal_id, activation_code=code, new_password=PASSWORD)
        yield Setting(cluster, served, workdir, api_key, lan, newcomers, pids)
    finally:
        if served is not None:
            served.close()
        cluster.destroy()


class Load:
    """Client threads, each with its own connection, sending one kind of call
    after another until stopped; each call once (no retries), every answer
    in the ledger."""

    def __init__(self, s: Setting, session_token: str) -> None:
        self.s = s
        self.session_token = session_token
        self.ledger = Ledger()
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._loop, args=(work,), name=f"load-{work.__name__}")
            for work in (
                self._register,
                self._verify,
                self._verify,
                self._sign_in,
                self._share,
                self._share,
            )
        ]

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(DEADLINE + 5)

    def _client(self) -> EidClient:
        return EidClient(
            self.s.served.target,
            api_key=self.s.api_key,
            session_token=self.session_token,
            timeout=DEADLINE,
            retry=RetryPolicy.off(),
        )

    def _loop(self, work: Callable[[EidClient], None]) -> None:
        with self._client() as client:
            while not self.stop.is_set():
                work(client)

    def _record(self, operation: str, send: Callable[[], str]) -> bool:
        started = time.monotonic()
        try:
            wrote = send()
        except EidError as e:
            self.ledger.add(Call(operation, started, time.monotonic(), e.code, e.reason))
            return False
        self.ledger.add(Call(operation, started, time.monotonic(), grpc.StatusCode.OK, None, wrote))
        return True

    def _register(self, client: EidClient) -> None:
        """The next newcomer, sent again with the same request id until
        answered (as the SDK's own retries would): a registration refused
        and then repeated never registers twice."""
        if not self.s.newcomers:
            self.stop.wait(0.05)
            return
        citizen = self.s.newcomers[0]
        request_id = f"outage-{citizen.personal_id}"

        def send() -> str:
            client.register(
                personal_id=citizen.personal_id,
                full_name=citizen.full_name,
                birth_date=citizen.birth_date,
                gender=citizen.gender.value,
                phone_number=phone_of(citizen)[0],
                portrait=portrait_capture(citizen.personal_id),
                request_id=request_id,
            )
            return citizen.personal_id

        if self._record("Register", send):
            self.s.newcomers.pop(0)
            self.stop.wait(REGISTER_PACE)

    def _verify(self, client: EidClient) -> None:
        lan = self.s.lan

        def send() -> str:
            answer = client.verify_demographic(
                lan.personal_id, full_name=lan.full_name, birth_date=lan.birth_date
            )
            return answer.verification_id if answer.verified else NOT_VERIFIED

        self._record("Verify", send)

    def _sign_in(self, client: EidClient) -> None:
        def send() -> str:
            answer = client.sign_in(personal_id=self.s.lan.personal_id, password=PASSWORD)
            return answer.session_id

        self._record("SignIn", send)

    def _share(self, client: EidClient) -> None:
        def send() -> str:
            answer = client.share_via_qr(attributes=["full_name"], ttl=timedelta(hours=1))
            return answer.share_id

        self._record("ShareViaQR", send)


@dataclass(frozen=True)
class Written:
    """What Lan's account shows: shares, sessions, verifications."""

    shares: set[str]
    sessions: set[str]
    verifications: set[str]

    @classmethod
    def read(cls, target: str, session_token: str) -> Written:
        with EidClient(target, session_token=session_token, timeout=30) as lan:
            return cls(
                {s.share_id for s in lan.iter_shares(page_size=100)},
                {s.session_id for s in lan.iter_sessions(page_size=100)},
                {r.verification_id for r in lan.iter_access_history(page_size=100)},
            )


def _sign_in(s: Setting) -> str:
    with EidClient(s.served.target) as app:
        return app.sign_in(personal_id=s.lan.personal_id, password=PASSWORD).session_token


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_calls_fail_fast_while_postgres_is_down_and_succeed_once_it_is_back(
    setting: Setting, mode: str
) -> None:
    s = setting
    session_token = _sign_in(s)
    with EidClient(s.served.target, session_token=session_token) as lan:
        kept_share = lan.share_via_qr(attributes=["full_name"], ttl=timedelta(hours=1))
    before = Written.read(s.served.target, session_token)

    with Load(s, session_token) as load:
        ledger = load.ledger
        ledger.wait_until("every kind of call answered", lambda c: c.ok, 2)

        stopping = time.monotonic()
        s.cluster.stop(mode)
        down = time.monotonic()
        ledger.wait_until("every kind of call refused while down", lambda c: c.started > down, 3)
        with EidClient(s.served.target, timeout=DEADLINE, retry=RetryPolicy.off()) as probe:
            health_while_down = probe.health()
        time.sleep(max(0.0, down + OUTAGE - time.monotonic()))  # the outage's length, not a wait
        starting = time.monotonic()
        s.cluster.start()
        up = time.monotonic()
        ledger.wait_until("every kind of call working again", lambda c: c.ok and c.started > up, 3)
    calls = ledger.snapshot()
    print(f"\n{mode}: pg_ctl stop {down - stopping:.2f} s, start {up - starting:.2f} s")
    print(_summary(calls))

    # While down: refused at once, UNAVAILABLE STORE_UNAVAILABLE; health SERVING.
    while_down = [c for c in calls if down < c.started and c.ended < starting]
    assert while_down
    assert {(c.code, c.reason) for c in while_down} == {(grpc.StatusCode.UNAVAILABLE, REASON)}
    slowest_refusal = max(c.seconds for c in while_down)
    print(
        f"{len(while_down)} calls while down, slowest answered in {slowest_refusal * 1000:.0f} ms"
    )
    assert slowest_refusal < FAST
    assert health_while_down == "SERVING"

    # Never INTERNAL, UNKNOWN or a deadline: every failure, even mid-transition, is the one reason.
    failures = [c for c in calls if not c.ok]
    assert {(c.code, c.reason) for c in failures} == {(grpc.StatusCode.UNAVAILABLE, REASON)}
    assert max(c.seconds for c in calls) < FAST, "a call hung"
    assert not [c for c in calls if c.wrote == NOT_VERIFIED]

    # Back: the last refusal came within RECOVERY of PostgreSQL's return, and
    # every kind of call succeeds since.
    last_failure = max(c.ended for c in failures)
    back = {
        op: min(c.ended for c in calls if c.ok and c.started > up and c.operation == op) - up
        for op in OPERATIONS
    }
    print(
        f"last refusal {last_failure - up:+.2f} s from PostgreSQL's return; first success:",
        ", ".join(f"{op} {t:.2f} s" for op, t in back.items()),
    )
    assert last_failure < up + RECOVERY

    # The same worker processes served throughout.
    assert s.served.serving_pids(2) == s.worker_pids
    assert not [line for line in s.served.lines if "exited" in line or "was killed" in line]

    # Acknowledged writes are there; refused ones, but for calls in flight
    # as PostgreSQL went or came back, are not.
    in_doubt = [c for c in failures if not (down < c.started and c.ended < starting)]
    after = Written.read(s.served.target, session_token)
    for kind, operation in (
        ("shares", "ShareViaQR"),
        ("sessions", "SignIn"),
        ("verifications", "Verify"),
    ):
        made = getattr(after, kind) - getattr(before, kind)
        acknowledged = {c.wrote for c in calls if c.ok and c.operation == operation}
        assert acknowledged <= made, f"acknowledged {kind} lost"
        doubtful = sum(1 for c in in_doubt if c.operation == operation)
        assert len(made - acknowledged) <= doubtful, f"refused {kind} written"
    with EidClient(s.served.target, api_key=s.api_key) as bank:
        assert bank.redeem_share(kept_share.token).verified

    # Registrations: each acknowledged one is there (registering again is
    # refused ACCOUNT_PENDING) and sent one activation SMS once the outbox
    # caught up: none lost to the outage, none sent twice by a Register
    # repeated with its request id after a refusal.
    by_id = {c.personal_id: c for c in demo_citizens()}
    registered = [by_id[c.wrote] for c in calls if c.ok and c.operation == "Register"]
    assert registered
    with EidClient(s.served.target, retry=RetryPolicy.off()) as app:
        for citizen in registered:
            with pytest.raises(EidError) as again:
                app.register(
                    personal_id=citizen.personal_id,
                    full_name=citizen.full_name,
                    birth_date=citizen.birth_date,
                    gender=citizen.gender.value,
                    phone_number=phone_of(citizen)[0],
                    portrait=portrait_capture(citizen.personal_id),
                    request_id=uuid.uuid4().hex,
                )
            assert again.value.reason == "ACCOUNT_PENDING"
    for citizen in registered:
        _first_code(s.workdir, citizen)
    assert [len(_codes_sent(s.workdir, c)) for c in registered] == [1] * len(registered)
