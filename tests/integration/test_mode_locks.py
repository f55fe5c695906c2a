"""A citizen's Verify-mode locks through a real server, with the SDK and the
CLI: a party that proves the credential in a locked mode is told
AUTH_MODE_LOCKED while other modes work, a stranger cannot tell a locked mode
from a wrong credential, RequestOtp sends nothing, and a temporary unlock
locks again by itself (the harness clock)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, timedelta

import grpc
import pytest

from eid.v1 import identity_service_pb2 as pb
from eid_client.cli import main as eid
from eid_client.client import EidClient
from eid_client.errors import EidError
from eid_service.domain.citizen import Demographics
from eid_service.domain.party import VerifyMode
from eid_service.domain.share import Attribute
from eid_service.use_cases.ports import Repositories
from tests.integration.conftest import Party
from tests.integration.flows import PASSWORD, phone_of, register_and_activate
from tests.integration.harness import ServerHarness

WRONG = "not the password at all"
STRANGER_ID = "079085000001"  # well formed; nobody has it


@pytest.fixture
def citizen(harness: ServerHarness, citizen_app: EidClient, adult: Demographics) -> EidClient:
    """The adult, active and signed in (the app keeps the session)."""
    register_and_activate(harness, citizen_app, adult)
    citizen_app.sign_in(personal_id=adult.personal_id, password=PASSWORD)
    return citizen_app


def _outbox(harness: ServerHarness) -> int:
    return int(harness.rows("SELECT count(*) FROM outbox")[0][0])


def _otp(harness: ServerHarness, bank: Party, who: Demographics) -> str:
    seen = len(harness.sender.messages)
    bank.client.request_otp(personal_id=who.personal_id)
    return harness.wait_for_code(phone_of(who)[1], after=seen)


def _as_seen(answer: pb.VerifyResponse) -> pb.VerifyResponse:
    """What tells two answers apart, without the per-call id and time."""
    seen = pb.VerifyResponse()
    seen.CopyFrom(answer)
    seen.ClearField("verification_id")
    seen.ClearField("verify_time")
    return seen


def test_a_locked_mode_is_refused_after_proof_and_other_modes_still_work(
    harness: ServerHarness, bank: Party, citizen: EidClient, adult: Demographics
) -> None:
    states = citizen.lock_verify_mode("password").modes
    assert [(s.mode, s.locked) for s in states] == [
        (pb.VERIFICATION_METHOD_PASSWORD, True),
        (pb.VERIFICATION_METHOD_ONE_TIME_CODE, False),
        (pb.VERIFICATION_METHOD_APPROVAL, False),
        (pb.VERIFICATION_METHOD_DEMOGRAPHIC, False),
        (pb.VERIFICATION_METHOD_BIOMETRIC, False),
    ]

    with pytest.raises(EidError) as refused:
        bank.client.verify_password(personal_id=adult.personal_id, password=PASSWORD)
    assert (refused.value.code, refused.value.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "AUTH_MODE_LOCKED",
    )
    code = _otp(harness, bank, adult)
    assert bank.client.verify_one_time_code(personal_id=adult.personal_id, code=code).verified

    citizen.unlock_verify_mode("password")
    assert bank.client.verify_password(personal_id=adult.personal_id, password=PASSWORD).verified


def test_a_stranger_cannot_tell_a_locked_mode_from_a_wrong_credential(
    harness: ServerHarness, bank: Party, citizen: EidClient, adult: Demographics
) -> None:
    unlocked = bank.client.verify_password(personal_id=adult.personal_id, password=WRONG)
    statements = harness.statements
    bank.client.verify_password(personal_id=adult.personal_id, password=WRONG)
    unlocked_cost = harness.statements - statements

    citizen.lock_verify_mode("password")
    statements = harness.statements
    locked = bank.client.verify_password(personal_id=adult.personal_id, password=WRONG)
    # Same answer, and the lock costs no statement of its own (read in the same query).
    assert _as_seen(locked) == _as_seen(unlocked)
    assert harness.statements - statements == unlocked_cost

    citizen.lock_verify_mode("one_time_code")
    answers = [
        bank.client.verify_one_time_code(personal_id=pid, code="123456")
        for pid in (adult.personal_id, STRANGER_ID)
    ]
    assert _as_seen(answers[0]) == _as_seen(answers[1])
    assert not answers[0].verified


def test_request_otp_sends_nothing_while_locked_and_a_temporary_unlock_relocks(
    harness: ServerHarness, bank: Party, citizen: EidClient, adult: Demographics
) -> None:
    citizen.lock_verify_mode("otp")
    before = _outbox(harness)
    locked = bank.client.request_otp(personal_id=adult.personal_id)
    unknown = bank.client.request_otp(personal_id=STRANGER_ID)
    # Alike but for the moment each was answered (the harness clock is real time).
    gap = locked.expire_time.ToDatetime() - unknown.expire_time.ToDatetime()
    assert abs(gap) < timedelta(seconds=5)
    assert [f.name for f, _ in locked.ListFields()] == [f.name for f, _ in unknown.ListFields()]
    assert _outbox(harness) == before

    states = citizen.unlock_verify_mode("one_time_code", minutes=10).modes
    otp = next(s for s in states if s.mode == pb.VERIFICATION_METHOD_ONE_TIME_CODE)
    assert not otp.locked
    relock = otp.relock_time.ToDatetime(tzinfo=UTC)
    assert abs(relock - (harness.clock() + timedelta(minutes=10))) < timedelta(seconds=5)
    harness.clock.advance(timedelta(minutes=1))  # RequestOtp: once a minute per party and citizen
    code = _otp(harness, bank, adult)

    harness.clock.advance(timedelta(minutes=9))
    assert [s.locked for s in citizen.verify_mode_locks()][1]
    sent = _outbox(harness)
    bank.client.request_otp(personal_id=adult.personal_id)
    assert _outbox(harness) == sent
    # The code sent while it was open proves the citizen: the party is told why.
    with pytest.raises(EidError) as refused:
        bank.client.verify_one_time_code(personal_id=adult.personal_id, code=code)
    assert refused.value.reason == "AUTH_MODE_LOCKED"
    assert harness.rows(
        "SELECT outcome FROM audit_events WHERE action = 'mode_lock.one_time_code'"
    ) == [("locked",), ("unlocked_600s",)]


def test_the_cli_locks_lists_and_unlocks_modes(
    harness: ServerHarness,
    citizen: EidClient,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert citizen.session_token is not None
    monkeypatch.setenv("EID_SESSION", citizen.session_token)
    monkeypatch.setenv("COLUMNS", "160")
    target = ["--target", harness.target]

    assert eid([*target, "lock-mode", "one_time_code"]) == 0
    assert "one_time_code" in capsys.readouterr().out
    assert eid([*target, "unlock-mode", "one_time_code", "--minutes", "10"]) == 0
    capsys.readouterr()
    assert eid([*target, "--json", "modes"]) == 0
    shown = json.loads(capsys.readouterr().out)["modes"]
    otp = next(m for m in shown if m["mode"] == "VERIFICATION_METHOD_ONE_TIME_CODE")
    assert otp["locked"] is False and otp["relock_time"]
    assert eid([*target, "lock-mode", "qr_share"]) == 2
    assert "unlockable mode" in capsys.readouterr().err


def test_a_demographic_claim_costs_the_same_statements_whoever_it_names(
    harness: ServerHarness,
    bank: Party,
    citizen: EidClient,
    adult: Demographics,
    decryptions: Callable[[], int],
) -> None:
    """Statements and decryptions alike: a number without an account opens
    decoys in place of an account's values (before, 0 decryptions against 3;
    found by an attacker's pass)."""

    def cost(personal_id: str) -> tuple[int, int]:
        statements, opens = harness.statements, decryptions()
        bank.client.verify_demographic(personal_id, full_name="Nguyen Van Khac")
        return harness.statements - statements, decryptions() - opens

    cost(adult.personal_id)  # warm: the party and the signing keys are cached
    active, stranger = cost(adult.personal_id), cost(STRANGER_ID)
    citizen.lock_verify_mode("demographic")
    locked = cost(adult.personal_id)
    assert active == stranger == locked

    # The one account query holds what credential() and view() would read.
    mode, compared = VerifyMode.DEMOGRAPHIC, frozenset(Attribute)
    for pid in (adult.personal_id, STRANGER_ID):

        def read(r: Repositories, pid: str = pid) -> tuple[object, object, object]:
            credential = r.accounts.credential(pid, mode)
            view = None
            if credential.account_id is not None:
                view = r.accounts.view(credential.account_id, compared)
            return r.accounts.credential_and_view(pid, mode, compared), credential, view

        both, credential, view = harness.in_uow(read)
        assert both == (credential, view)
        assert (view is None) is (pid == STRANGER_ID)
