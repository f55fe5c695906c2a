"""Lock and unlock through gRPC on SQLite and PostgreSQL: a lost phone locked
from another device, everything dead at once, notices sent, unlocked by an
officer or by the citizen; and nothing told to a caller without proof."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest

from eid.v1 import identity_service_pb2 as pb
from eid_client.client import EidClient
from eid_client.errors import EidError
from eid_service.domain.citizen import Demographics
from eid_service.domain.rate_limits import Limit, OfficerLimits
from tests.integration.account_life_kit import (
    Refusal,
    Wire,
    activated,
    bearer,
    messages_to,
    wire,
)
from tests.integration.conftest import Party
from tests.integration.flows import PASSWORD, phone_of, register
from tests.integration.harness import ServerHarness

EMAIL = "lan@example.vn"


def _by_password(citizen: Demographics, password: str = PASSWORD) -> pb.LockAccountRequest:
    return pb.LockAccountRequest(
        password=pb.LockWithPassword(personal_id=citizen.personal_id, password=password)
    )


def _code(
    harness: ServerHarness, w: Wire, citizen: Demographics, purpose: pb.AccountCodePurpose.ValueType
) -> str:
    seen = len(harness.sender.messages)
    sent = w.call(
        "SendAccountCode",
        pb.SendAccountCodeRequest(
            purpose=purpose, personal_id=citizen.personal_id, phone_number=phone_of(citizen)[0]
        ),
    )
    assert not isinstance(sent, Refusal)
    return harness.wait_for_code(phone_of(citizen)[1], after=seen)


def _create_officer(harness: ServerHarness) -> str:
    _, key = harness.run(
        harness.runtime.uow.atomically(lambda r: r.officers.create("Officer Hà", harness.clock()))
    )
    return key


def test_a_lost_phone_is_locked_from_another_device_and_unlocked_by_an_officer(
    harness: ServerHarness, adult: Demographics, bank: Party
) -> None:
    activated(harness, adult)
    with wire(harness, "198.51.100.10") as lost_phone, wire(harness, "203.0.113.20") as laptop:
        session = lost_phone.sign_in(adult, device="lost phone")
        share = lost_phone.call(
            "ShareViaQR",
            pb.ShareViaQRRequest(attributes=[pb.ATTRIBUTE_FULL_NAME]),
            **bearer(session.session_token),
        )
        locked = laptop.call("LockAccount", _by_password(adult))
        assert not isinstance(locked, Refusal)
        assert locked.account.state == pb.ACCOUNT_STATE_LOCKED and locked.newly_locked

        # Everything is dead at once.
        shared = lost_phone.call(
            "ShareViaQR",
            pb.ShareViaQRRequest(attributes=[pb.ATTRIBUTE_FULL_NAME]),
            **bearer(session.session_token),
        )
        assert isinstance(shared, Refusal) and shared.reason == "SESSION_INVALID"
        refreshed = lost_phone.call(
            "RefreshSession", pb.RefreshSessionRequest(refresh_token=session.refresh_token)
        )
        assert isinstance(refreshed, Refusal) and refreshed.reason == "REFRESH_TOKEN_INVALID"
        with EidClient(harness.target, api_key=bank.api_key) as party:
            with pytest.raises(EidError) as redeemed:
                party.redeem_share(share.token)
            assert redeemed.value.reason == "ACCOUNT_LOCKED"
            with pytest.raises(EidError) as verified:
                party.verify_password(personal_id=adult.personal_id, password=PASSWORD)
            assert verified.value.reason == "ACCOUNT_LOCKED"
        signed = laptop.sign_in(adult)
        assert isinstance(signed, Refusal) and signed.reason == "ACCOUNT_LOCKED"
        # Locking again changes nothing and says so.
        again = laptop.call("LockAccount", _by_password(adult))
        assert not isinstance(again, Refusal) and not again.newly_locked
        # The registered phone is told.
        notices = messages_to(harness, phone_of(adult)[1], at_least=2)
        assert any("khóa" in body for body in notices[1:])

        # The officer, after checking the citizen in person.
        key = _create_officer(harness)
        wrong = laptop.call(
            "UnlockAccount",
            pb.UnlockAccountRequest(officer=pb.UnlockByOfficer(personal_id=adult.personal_id)),
            x_officer_key="eido_not-a-real-key-at-all-000000000000",
        )
        assert isinstance(wrong, Refusal) and wrong.reason == "OFFICER_KEY_INVALID"
        unlocked = laptop.call(
            "UnlockAccount",
            pb.UnlockAccountRequest(officer=pb.UnlockByOfficer(personal_id=adult.personal_id)),
            x_officer_key=key,
        )
        assert not isinstance(unlocked, Refusal)
        assert unlocked.account.state == pb.ACCOUNT_STATE_ACTIVE
        assert not isinstance(laptop.sign_in(adult), Refusal)
    actors = harness.rows("SELECT action, outcome, actor FROM audit_events WHERE actor IS NOT NULL")
    assert [(a, o) for a, o, _ in actors] == [("unlock", "ok_officer")]
    assert actors[0][2].startswith("off_")


def test_lock_with_a_code_and_unlock_with_a_code_and_the_password(
    harness: ServerHarness, citizen_app: EidClient, adult: Demographics
) -> None:
    """The phone is lost but the number is back on a new SIM."""
    activated(harness, adult)
    with wire(harness) as w:
        code = _code(harness, w, adult, pb.ACCOUNT_CODE_PURPOSE_LOCK)
        locked = w.call(
            "LockAccount",
            pb.LockAccountRequest(
                one_time_code=pb.LockWithCode(personal_id=adult.personal_id, one_time_code=code)
            ),
        )
        assert not isinstance(locked, Refusal) and locked.newly_locked
        used = w.call(
            "LockAccount",
            pb.LockAccountRequest(
                one_time_code=pb.LockWithCode(personal_id=adult.personal_id, one_time_code=code)
            ),
        )
        assert isinstance(used, Refusal) and used.reason == "ONE_TIME_CODE_INVALID"

        unlock_code = _code(harness, w, adult, pb.ACCOUNT_CODE_PURPOSE_UNLOCK)
        wrong_password = w.call(
            "UnlockAccount",
            pb.UnlockAccountRequest(
                citizen=pb.UnlockByCitizen(
                    personal_id=adult.personal_id,
                    one_time_code=unlock_code,
                    password="not the password",
                )
            ),
        )
        assert isinstance(wrong_password, Refusal)
        assert wrong_password.reason == "INVALID_CREDENTIALS"
        # The right code was not spent by the failed try.
        done = w.call(
            "UnlockAccount",
            pb.UnlockAccountRequest(
                citizen=pb.UnlockByCitizen(
                    personal_id=adult.personal_id, one_time_code=unlock_code, password=PASSWORD
                )
            ),
        )
        assert not isinstance(done, Refusal)
        assert done.account.state == pb.ACCOUNT_STATE_ACTIVE


def test_lock_from_the_signed_in_device_notifies_phone_and_email(
    harness: ServerHarness, citizen_app: EidClient, adult: Demographics
) -> None:
    seen = len(harness.sender.messages)
    register(citizen_app, adult, email=EMAIL)
    code = harness.wait_for_code(phone_of(adult)[1], after=seen)
    citizen_app.activate(personal_id=adult.personal_id, activation_code=code, new_password=PASSWORD)
    with wire(harness) as w:
        session = w.sign_in(adult)
        locked = w.call("LockAccount", pb.LockAccountRequest(), **bearer(session.session_token))
        assert not isinstance(locked, Refusal) and locked.newly_locked
        emails = messages_to(harness, EMAIL, at_least=1)
        assert len(emails) == 1 and "khóa" in emails[0]


def test_no_lock_answer_tells_a_stranger_anything(
    harness: ServerHarness, citizen_app: EidClient, adults: list[Demographics]
) -> None:
    """Unknown, PENDING, LOCKED and ACTIVE accounts: a wrong password or a
    wrong code gets the same refusal."""
    unknown, pending, locked, active = adults[0], adults[1], adults[2], adults[3]
    register(citizen_app, pending)
    activated(harness, locked)
    activated(harness, active)
    with wire(harness) as w:
        assert not isinstance(w.call("LockAccount", _by_password(locked)), Refusal)
    with wire(harness, "203.0.113.99") as stranger:
        by_password = [
            stranger.call("LockAccount", _by_password(c, "wrong password 123"))
            for c in (unknown, pending, locked, active)
        ]
        by_code = [
            stranger.call(
                "LockAccount",
                pb.LockAccountRequest(
                    one_time_code=pb.LockWithCode(personal_id=c.personal_id, one_time_code="123456")
                ),
            )
            for c in (unknown, pending, locked, active)
        ]
        unlock = [
            stranger.call(
                "UnlockAccount",
                pb.UnlockAccountRequest(
                    citizen=pb.UnlockByCitizen(
                        personal_id=c.personal_id,
                        one_time_code="123456",
                        password="wrong password 123",
                    )
                ),
            )
            for c in (unknown, pending, locked, active)
        ]
    for answers in (by_password, by_code, unlock):
        seen = {(a.code, a.reason, a.message) for a in answers if isinstance(a, Refusal)}
        assert len(seen) == 1 and all(isinstance(a, Refusal) for a in answers)
    assert by_password[0].code == grpc.StatusCode.UNAUTHENTICATED
    assert by_code[0].code == grpc.StatusCode.INVALID_ARGUMENT


def test_a_stranger_cannot_burn_the_citizens_lock_code(
    harness: ServerHarness, adult: Demographics
) -> None:
    activated(harness, adult)
    with wire(harness) as citizen, wire(harness, "203.0.113.66") as stranger:
        code = _code(harness, citizen, adult, pb.ACCOUNT_CODE_PURPOSE_LOCK)
        wrong = "000000" if code != "000000" else "111111"
        guess = pb.LockAccountRequest(
            one_time_code=pb.LockWithCode(personal_id=adult.personal_id, one_time_code=wrong)
        )
        answers = [stranger.call("LockAccount", guess) for _ in range(6)]
        assert [a.reason for a in answers] == ["ONE_TIME_CODE_INVALID"] * 5 + [
            "TOO_MANY_FAILED_ATTEMPTS"
        ]
        assert answers[-1].retry_seconds is not None
        right = pb.LockAccountRequest(
            one_time_code=pb.LockWithCode(personal_id=adult.personal_id, one_time_code=code)
        )
        locked = citizen.call("LockAccount", right)
        assert not isinstance(locked, Refusal) and locked.newly_locked


def test_strangers_from_four_addresses_cannot_burn_the_citizens_lock_code(
    harness: ServerHarness, adult: Demographics
) -> None:
    """The phone is lost, the number kept on a new SIM: the citizen asks for
    a lock code. A stranger who knows only the ID number guesses from 4
    addresses, 5 wrong codes each (each address's own budget); the citizen's
    code still locks. Before, those 20 guesses spent the code (found by an
    attacker's pass)."""
    activated(harness, adult)
    with wire(harness) as citizen:
        code = _code(harness, citizen, adult, pb.ACCOUNT_CODE_PURPOSE_LOCK)
        wrong = "000000" if code != "000000" else "111111"
        guess = pb.LockAccountRequest(
            one_time_code=pb.LockWithCode(personal_id=adult.personal_id, one_time_code=wrong)
        )
        for n in range(4):
            with wire(harness, f"203.0.113.{70 + n}") as stranger:
                answers = [stranger.call("LockAccount", guess) for _ in range(5)]
                assert [a.reason for a in answers] == ["ONE_TIME_CODE_INVALID"] * 5
        right = pb.LockAccountRequest(
            one_time_code=pb.LockWithCode(personal_id=adult.personal_id, one_time_code=code)
        )
        locked = citizen.call("LockAccount", right)
        assert not isinstance(locked, Refusal), locked
        assert locked.newly_locked


def _with_code(citizen: Demographics, code: str) -> pb.LockAccountRequest:
    return pb.LockAccountRequest(
        one_time_code=pb.LockWithCode(personal_id=citizen.personal_id, one_time_code=code)
    )


def test_unlock_codes_a_stranger_asks_for_leave_the_citizens_code_usable(
    harness: ServerHarness, adult: Demographics
) -> None:
    """A stranger who knows the phone asks for unlock codes right after the
    citizen did: the citizen's code still unlocks. Before, each new code
    voided the one before (found by an attacker's pass)."""
    activated(harness, adult)
    with wire(harness) as citizen, wire(harness, "203.0.113.66") as stranger:
        assert not isinstance(citizen.call("LockAccount", _by_password(adult)), Refusal)
        code = _code(harness, citizen, adult, pb.ACCOUNT_CODE_PURPOSE_UNLOCK)
        for _ in range(2):
            harness.clock.advance(timedelta(minutes=1))
            _code(harness, stranger, adult, pb.ACCOUNT_CODE_PURPOSE_UNLOCK)
        done = citizen.call(
            "UnlockAccount",
            pb.UnlockAccountRequest(
                citizen=pb.UnlockByCitizen(
                    personal_id=adult.personal_id, one_time_code=code, password=PASSWORD
                )
            ),
        )
        assert not isinstance(done, Refusal), done
        assert done.account.state == pb.ACCOUNT_STATE_ACTIVE


def test_the_three_newest_lock_codes_work_and_a_used_one_ends_the_older(
    harness: ServerHarness, adult: Demographics
) -> None:
    activated(harness, adult)
    with wire(harness) as w:
        codes = []
        for _ in range(4):
            codes.append(_code(harness, w, adult, pb.ACCOUNT_CODE_PURPOSE_LOCK))
            harness.clock.advance(timedelta(minutes=1))
        if codes[0] not in codes[1:]:  # the same six digits one time in a million
            oldest = w.call("LockAccount", _with_code(adult, codes[0]))
            assert isinstance(oldest, Refusal) and oldest.reason == "ONE_TIME_CODE_INVALID"
        locked = w.call("LockAccount", _with_code(adult, codes[2]))
        assert not isinstance(locked, Refusal) and locked.newly_locked
        by_officer = w.call(
            "UnlockAccount",
            pb.UnlockAccountRequest(officer=pb.UnlockByOfficer(personal_id=adult.personal_id)),
            x_officer_key=_create_officer(harness),
        )
        assert not isinstance(by_officer, Refusal), by_officer
        if codes[1] not in codes[2:]:
            older = w.call("LockAccount", _with_code(adult, codes[1]))
            assert isinstance(older, Refusal) and older.reason == "ONE_TIME_CODE_INVALID"
        newer = w.call("LockAccount", _with_code(adult, codes[3]))
        assert not isinstance(newer, Refusal) and newer.newly_locked


def test_nobody_elses_request_id_keeps_a_citizen_from_locking(
    harness: ServerHarness, adults: list[Demographics]
) -> None:
    """Calls without credentials are scoped by their content. Before, all of
    them shared one scope: a lock sent with an id someone had used (an app
    counting from 1) was refused REQUEST_ID_REUSED and the lost phone's
    account stayed open (found by an attacker's pass); scoped by ID number
    instead, a stranger who knows the number could still spoil the id first
    with a wrong code (found in review)."""
    first, second = adults[0], adults[1]
    for citizen in (first, second):
        activated(harness, citizen)
    with wire(harness) as w:
        spoiler = pb.LockAccountRequest(
            request_id="lock-1",
            one_time_code=pb.LockWithCode(personal_id=first.personal_id, one_time_code="000000"),
        )
        assert isinstance(w.call("LockAccount", spoiler), Refusal)
        for citizen in (first, second):
            request = _by_password(citizen)
            request.request_id = "lock-1"
            locked = w.call("LockAccount", request)
            assert not isinstance(locked, Refusal), locked
            assert locked.account.state == pb.ACCOUNT_STATE_LOCKED and locked.newly_locked
    assert harness.rows("SELECT DISTINCT state FROM accounts") == [("locked",)]


def test_an_officers_refused_unlocks_are_in_the_audit_log(
    harness: ServerHarness, adults: list[Demographics]
) -> None:
    """Before, ACCOUNT_NOT_LOCKED and ACCOUNT_NOT_FOUND left no trace: an
    officer could look up who has an account and whether it is locked,
    unseen (found by an attacker's pass)."""
    key = _create_officer(harness)
    activated(harness, adults[0])
    before = harness.rows("SELECT count(*) FROM audit_events")[0][0]
    with wire(harness) as w:
        answers = [
            w.call(
                "UnlockAccount",
                pb.UnlockAccountRequest(officer=pb.UnlockByOfficer(personal_id=who.personal_id)),
                x_officer_key=key,
            )
            for who in adults[:2]
        ]
    assert [a.reason for a in answers] == ["ACCOUNT_NOT_LOCKED", "ACCOUNT_NOT_FOUND"]
    assert harness.rows("SELECT count(*) FROM audit_events")[0][0] == before + 2


def test_an_officers_key_is_refused_once_its_allowance_is_spent(
    database_url: str, adults: list[Demographics]
) -> None:
    """A stolen officer key asking about every ID number is stopped: past the
    allowance, the answer is TOO_MANY_REQUESTS whatever the number, with when
    to ask again, and nothing is looked up or audited, even under a request id
    the officer used; a retry of an answered call is still answered."""
    hour = Limit("officer-hour", 2, timedelta(hours=1))
    harness = ServerHarness(database_url, officer_limits=OfficerLimits(per_hour=hour)).start()
    try:
        harness.add_citizens(adults[:3])
        key = _create_officer(harness)
        activated(harness, adults[0])
        before = harness.rows("SELECT count(*) FROM audit_events")[0][0]
        # The refusals' waits are compared whole: one second's turn between two
        # of them made them differ by a second (a flaky failure in CI).
        harness.clock.stop()

        def unlock(who: Demographics, request_id: str) -> object:
            request = pb.UnlockAccountRequest(
                officer=pb.UnlockByOfficer(personal_id=who.personal_id), request_id=request_id
            )
            return w.call("UnlockAccount", request, x_officer_key=key)

        with wire(harness) as w:
            answered = [unlock(who, f"counter-{n}") for n, who in enumerate(adults[:2])]
            retried = unlock(adults[0], "counter-0")
            over = [unlock(who, f"counter-{n + 2}") for n, who in enumerate(adults[:3])]
            # Guessing which citizen an id of the officer's was for counts too:
            # REQUEST_ID_REUSED would tell a wrong guess from the right one.
            over += [unlock(who, "counter-0") for who in adults[1:3]]
            replayed = unlock(adults[0], "counter-0")
        assert [getattr(a, "reason", None) for a in answered] == [
            "ACCOUNT_NOT_LOCKED",
            "ACCOUNT_NOT_FOUND",
        ]
        for again in (retried, replayed):
            assert isinstance(again, Refusal) and again.reason == "ACCOUNT_NOT_LOCKED"
        for refusal in over:
            assert isinstance(refusal, Refusal)
            assert refusal.code == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert refusal.reason == "TOO_MANY_REQUESTS" and refusal.retry_seconds
        assert len({(r.message, r.retry_seconds) for r in over if isinstance(r, Refusal)}) == 1
        assert harness.rows("SELECT count(*) FROM audit_events")[0][0] == before + 2
    finally:
        harness.stop()
