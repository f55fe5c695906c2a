"""Credential checks nobody can abuse, tried as an attacker would, through gRPC.

A stranger who knows a citizen's ID number guesses passwords from their own
address (or as a relying party); the citizen must still get in, and nothing in
the answers or in the work done tells whether the number has an account."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
import sqlalchemy as sa

from eid.v1 import identity_service_pb2 as pb
from eid.v1 import identity_service_pb2_grpc as pb_grpc
from eid_client.client import EidClient
from eid_client.errors import EidError, error_from_rpc_error
from eid_service.demo import demo_citizens
from eid_service.domain.citizen import Demographics
from eid_service.domain.credential_policy import MAX_FAILURES_PER_SOURCE
from tests.integration.conftest import Party
from tests.integration.flows import PASSWORD, register, register_and_activate
from tests.integration.harness import ServerHarness

STRANGER = "203.0.113.7"
CITIZEN_PHONE = "198.51.100.2"


def sign_in_from(
    harness: ServerHarness, address: str, personal_id: str, password: str, timeout: float = 10
) -> str:
    """SignIn as a client at `address` (behind the trusted proxy): "ok" or the reason."""
    with grpc.insecure_channel(harness.target) as channel:
        stub = pb_grpc.IdentityServiceStub(channel)
        try:
            stub.SignIn(
                pb.SignInRequest(personal_id=personal_id, password=password),
                metadata=(("x-forwarded-for", address),),
                timeout=timeout,
            )
        except grpc.RpcError as e:
            error = error_from_rpc_error(e)
            return error.reason or error.code.name
    return "ok"


def test_a_stranger_cannot_lock_a_citizen_out_of_sign_in(
    harness: ServerHarness, citizen_app: EidClient, adult: Demographics
) -> None:
    register_and_activate(harness, citizen_app, adult)
    tries = [sign_in_from(harness, STRANGER, adult.personal_id, f"guess-{i:04}") for i in range(12)]
    assert tries == ["INVALID_CREDENTIALS"] * MAX_FAILURES_PER_SOURCE + [
        "TOO_MANY_FAILED_ATTEMPTS"
    ] * (12 - MAX_FAILURES_PER_SOURCE)
    # The stranger is stopped even with the right password...
    assert sign_in_from(harness, STRANGER, adult.personal_id, PASSWORD) == (
        "TOO_MANY_FAILED_ATTEMPTS"
    )
    # ...while the citizen, from their own phone, signs in at once.
    assert sign_in_from(harness, CITIZEN_PHONE, adult.personal_id, PASSWORD) == "ok"


def test_a_guessing_party_cannot_lock_a_citizen_out_of_other_parties(
    harness: ServerHarness, citizen_app: EidClient, bank: Party, adult: Demographics
) -> None:
    register_and_activate(harness, citizen_app, adult)
    for i in range(MAX_FAILURES_PER_SOURCE):
        guess = bank.client.verify_password(personal_id=adult.personal_id, password=f"guess-{i}")
        assert guess.verified is False
    with pytest.raises(EidError) as caught:
        bank.client.verify_password(personal_id=adult.personal_id, password=PASSWORD)
    assert caught.value.reason == "TOO_MANY_FAILED_ATTEMPTS"
    _, other_key = harness.create_party("Clinic")
    with EidClient(harness.target, api_key=other_key) as clinic:
        assert clinic.verify_password(personal_id=adult.personal_id, password=PASSWORD).verified
    assert sign_in_from(harness, CITIZEN_PHONE, adult.personal_id, PASSWORD) == "ok"


def _prepare(
    kind: str, harness: ServerHarness, citizen_app: EidClient, citizen: Demographics
) -> None:
    if kind == "active":
        register_and_activate(harness, citizen_app, citizen)
    elif kind == "pending":
        register(citizen_app, citizen)


@pytest.mark.parametrize("kind", ["unknown", "pending", "active"])
def test_failed_sign_ins_look_the_same_whoever_the_number_names(
    harness: ServerHarness, citizen_app: EidClient, adults: list[Demographics], kind: str
) -> None:
    citizen = adults[1]
    _prepare(kind, harness, citizen_app, citizen)
    answers = [
        sign_in_from(harness, STRANGER, citizen.personal_id, "wrong-pass-1") for _ in range(7)
    ]
    assert answers == ["INVALID_CREDENTIALS"] * 5 + ["TOO_MANY_FAILED_ATTEMPTS"] * 2


def _work_of_one_call(harness: ServerHarness, call: Callable[[], object]) -> tuple[int, int]:
    """(Argon2id runs, SQL statements) one call costs the server."""
    hashes, statements = harness.hasher.verifications, harness.statements
    call()
    return harness.hasher.verifications - hashes, harness.statements - statements


def test_unknown_pending_and_active_cost_the_same_work(
    harness: ServerHarness, citizen_app: EidClient, bank: Party, adults: list[Demographics]
) -> None:
    """Timing cannot tell accounts apart when the work is the same: the same
    number of Argon2id runs and of database statements (compared as counts, not
    wall time, because these machines are noisy; `make bench` measures time)."""
    unknown, pending, active = adults[1], adults[2], adults[3]
    _prepare("pending", harness, citizen_app, pending)
    _prepare("active", harness, citizen_app, active)
    bank.client.verify_password(personal_id=unknown.personal_id, password="warm-up-000")

    def wrong_password(who: Demographics, i: int) -> Callable[[], object]:
        return lambda: bank.client.verify_password(
            personal_id=who.personal_id, password=f"wrong-pass-{i}"
        )

    work = {
        who.personal_id: [_work_of_one_call(harness, wrong_password(who, i)) for i in range(3)]
        for who in (unknown, pending, active)
    }
    seen = {cost for costs in work.values() for cost in costs}
    assert len(seen) == 1, work
    (hashes, statements), *_ = seen
    assert hashes == 1
    assert statements > 0


def test_cancelled_checks_leave_nothing_held(
    harness: ServerHarness, citizen_app: EidClient, bank: Party, adult: Demographics
) -> None:
    """Checks abandoned by their callers' deadlines do not hold the account:
    the citizen's next right password is answered at once (it used to wait
    for a 5-second lease)."""
    register_and_activate(harness, citizen_app, adult)

    def abandon(i: int) -> str:
        return sign_in_from(harness, STRANGER, adult.personal_id, f"guess-{i}", timeout=0.005)

    with ThreadPoolExecutor(8) as pool:
        outcomes = set(pool.map(abandon, range(24)))
    assert "DEADLINE_EXCEEDED" in outcomes
    with EidClient(harness.target, api_key=bank.api_key, timeout=2.0) as quick:
        assert quick.verify_password(personal_id=adult.personal_id, password=PASSWORD).verified
    assert sign_in_from(harness, CITIZEN_PHONE, adult.personal_id, PASSWORD, timeout=2.0) == "ok"


def test_right_passwords_cut_short_by_deadlines_do_not_lock_the_citizen_out(
    harness: ServerHarness, citizen_app: EidClient, adult: Demographics
) -> None:
    """A check that was counted runs to its outcome even when its caller gave
    up, so a right password always takes its count back (an attacker slowing
    the server must not turn the citizen's own timeouts into failures)."""
    register_and_activate(harness, citizen_app, adult)
    for _ in range(MAX_FAILURES_PER_SOURCE + 1):
        sign_in_from(harness, CITIZEN_PHONE, adult.personal_id, PASSWORD, timeout=0.005)
    assert sign_in_from(harness, CITIZEN_PHONE, adult.personal_id, PASSWORD) == "ok"


def test_a_stop_lets_the_password_checks_it_cut_short_take_their_count_back(
    database_url: str, adult: Demographics, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server stopping (grace 1 s) while a right password is being compared:
    the call is cut off, yet the check records its outcome before the hash
    threads and the store close, so no failure stands against the citizen."""
    harness = ServerHarness(database_url).start()
    stopped = False
    try:
        harness.add_citizens(demo_citizens())
        with EidClient(harness.target) as app:
            register_and_activate(harness, app, adult)
        comparing, release = threading.Event(), threading.Event()
        compare = harness.hasher.verify

        async def held(stored_hash: str | None, password: str) -> bool:
            comparing.set()
            await asyncio.to_thread(release.wait, 10)
            return await compare(stored_hash, password)

        monkeypatch.setattr(harness.hasher, "verify", held)
        answers: list[str] = []
        signing_in = threading.Thread(
            target=lambda: answers.append(
                sign_in_from(harness, CITIZEN_PHONE, adult.personal_id, PASSWORD)
            )
        )
        signing_in.start()
        assert comparing.wait(10)
        stopping = threading.Thread(target=harness.stop)
        stopping.start()
        stopped = True
        time.sleep(1.5)  # past the grace: the call cut off, the runtime closing
        release.set()
        stopping.join(20)
        signing_in.join(20)
    finally:
        release.set()
        if not stopped:
            harness.stop()
    assert answers and answers[0] != "ok"  # the stop cut the call off
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as db:
            failures = db.execute(sa.text("SELECT failures FROM credential_attempts")).scalars()
            assert all(f == 0 for f in failures)
    finally:
        engine.dispose()


def test_an_overlong_password_is_refused_before_any_work(
    harness: ServerHarness, bank: Party, adult: Demographics
) -> None:
    hashes = harness.hasher.verifications
    # Just under Verify's request size (a larger request is REQUEST_TOO_LARGE,
    # unread: test_transport_limits.py).
    with pytest.raises(EidError) as caught:
        bank.client.verify_password(personal_id=adult.personal_id, password="x" * 60_000)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.reason == "PASSWORD_TOO_LONG"
    assert harness.hasher.verifications == hashes
