"""Request ids: a retried call gets the first answer, never a second effect;
ids are scoped to the caller; records expire and are purged."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TypeVar

import grpc
import pytest

from eid.v1 import identity_service_pb2 as pb
from eid_client.client import EidClient
from eid_client.errors import EidError
from eid_service.domain.citizen import Demographics
from eid_service.use_cases.purge import purge_expired
from eid_service.use_cases.sessions import REFRESH_TTL
from tests.integration.conftest import Party
from tests.integration.flows import PASSWORD, phone_of, register, register_and_activate
from tests.integration.harness import ServerHarness

BURST = 16
T = TypeVar("T")


def _all_at_once(call: Callable[[], T]) -> list[T | str | None]:
    """BURST concurrent calls: each one's answer, or the reason it was refused."""

    def one(_: int) -> T | str | None:
        try:
            return call()
        except EidError as e:
            return e.reason

    with ThreadPoolExecutor(BURST) as pool:
        return list(pool.map(one, range(BURST)))


@pytest.fixture
def session(harness: ServerHarness, citizen_app: EidClient, adult: Demographics) -> str:
    register_and_activate(harness, citizen_app, adult)
    return citizen_app.sign_in(personal_id=adult.personal_id, password=PASSWORD).session_token


def test_a_lost_redemption_answer_is_replayed_with_its_attributes(
    harness: ServerHarness, citizen_app: EidClient, bank: Party, session: str
) -> None:
    token = citizen_app.share_via_qr(attributes=["full_name", "birth_date"]).token
    first = bank.client.redeem_share(token, request_id="scan-0001")
    # The answer was lost on the way; the party retries with the same id.
    again = bank.client.redeem_share(token, request_id="scan-0001")
    assert again == first
    assert again.attributes.full_name
    # A fresh request id is a new redemption: the share was used once already.
    with pytest.raises(EidError) as caught:
        bank.client.redeem_share(token, request_id="scan-0002")
    assert caught.value.reason == "SHARE_ALREADY_REDEEMED"


def test_a_retried_multi_use_redemption_is_answered_once_and_counted_once(
    harness: ServerHarness, citizen_app: EidClient, bank: Party, session: str
) -> None:
    token = citizen_app.share_via_qr(attributes=["birth_date"], multi_use=True).token
    first = bank.client.redeem_share(token, request_id="scan-0001")
    # The share would redeem again, but this request already has its answer.
    again = bank.client.redeem_share(token, request_id="scan-0001")
    assert again == first
    (listed,) = citizen_app.iter_shares()
    assert listed.redeem_count == 1
    history = list(citizen_app.iter_access_history())
    assert [h.verification_id for h in history] == [first.verification_id]
    # A fresh request id redeems it again.
    assert bank.client.redeem_share(token, request_id="scan-0002").verification_id not in (
        first.verification_id,
        "",
    )


def test_request_ids_are_scoped_to_the_party(
    harness: ServerHarness, citizen_app: EidClient, bank: Party, session: str
) -> None:
    token = citizen_app.share_via_qr(attributes=["full_name"]).token
    bank.client.redeem_share(token, request_id="scan-0001")
    _, other_key = harness.create_party("Other Bank")
    with EidClient(harness.target, api_key=other_key) as other, pytest.raises(EidError) as caught:
        other.redeem_share(token, request_id="scan-0001")  # not the bank's answer
    assert caught.value.reason == "SHARE_ALREADY_REDEEMED"


def test_a_request_id_reused_for_another_request_is_refused(
    citizen_app: EidClient, bank: Party, session: str
) -> None:
    first = citizen_app.share_via_qr(attributes=["full_name"]).token
    second = citizen_app.share_via_qr(attributes=["full_name"]).token
    bank.client.redeem_share(first, request_id="scan-0001")
    with pytest.raises(EidError) as caught:
        bank.client.redeem_share(second, request_id="scan-0001")
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.reason == "REQUEST_ID_REUSED"


def test_concurrent_duplicate_redemptions_all_get_the_first_answer(
    citizen_app: EidClient, bank: Party, session: str
) -> None:
    token = citizen_app.share_via_qr(attributes=["full_name"]).token
    with ThreadPoolExecutor(BURST) as pool:
        answers = list(
            pool.map(lambda _: bank.client.redeem_share(token, request_id="dup"), range(BURST))
        )
    assert all(a == answers[0] for a in answers)
    assert answers[0].verified


def test_sixteen_concurrent_duplicate_activations_all_get_the_first_answer(
    harness: ServerHarness, citizen_app: EidClient, adult: Demographics
) -> None:
    register(citizen_app, adult)
    code = harness.wait_for_code(phone_of(adult)[1])

    answers = _all_at_once(
        lambda: citizen_app.activate(
            personal_id=adult.personal_id,
            activation_code=code,
            new_password=PASSWORD,
            request_id="activate-once",
        )
    )
    assert all(a == answers[0] for a in answers), answers
    # No duplicate spent an attempt: the code was counted once, when consumed.
    assert harness.rows("SELECT attempts FROM activation_codes") == [(1,)]


def test_duplicate_share_requests_issue_one_share(
    harness: ServerHarness, citizen_app: EidClient, session: str
) -> None:
    with ThreadPoolExecutor(BURST) as pool:
        answers = list(
            pool.map(
                lambda _: citizen_app.share_via_qr(attributes=["gender"], request_id="share-1"),
                range(BURST),
            )
        )
    assert len({a.share_id for a in answers}) == 1
    assert harness.rows("SELECT count(*) FROM shares") == [(1,)]


def test_a_retry_after_the_app_refreshed_its_token_gets_the_first_answer(
    harness: ServerHarness, citizen_app: EidClient, adult: Demographics, session: str
) -> None:
    """The app's answer is lost; by its retry the access token had expired
    and the app refreshed it (the same session). Before, request ids were
    scoped by the token: the retry issued a second share, and a revocation
    retried was answered SESSION_NOT_FOUND (found by an attacker's pass)."""
    laptop = EidClient(harness.target)
    with laptop:
        other = laptop.sign_in(
            personal_id=adult.personal_id, password=PASSWORD, device_name="laptop"
        )
    shared = citizen_app.share_via_qr(attributes=["gender"], request_id="share-1")
    revoked = citizen_app.revoke_session(other.session_id, request_id="revoke-1")

    refreshed = citizen_app.refresh_session()
    assert refreshed.session_token != session

    again = citizen_app.share_via_qr(attributes=["gender"], request_id="share-1")
    assert again == shared
    # A copy still carrying the old token (a duplicate in flight) too (found in review).
    copy = citizen_app.share_via_qr(
        attributes=["gender"], request_id="share-1", session_token=session
    )
    assert copy == shared
    assert harness.rows("SELECT count(*) FROM shares") == [(1,)]
    assert citizen_app.revoke_session(other.session_id, request_id="revoke-1") == revoked
    # Another caller naming the same request id is not answered from this session.
    with EidClient(harness.target) as stranger:
        stranger.sign_in(personal_id=adult.personal_id, password=PASSWORD, device_name="tablet")
        theirs = stranger.share_via_qr(attributes=["gender"], request_id="share-1")
    assert theirs.share_id != shared.share_id


def test_expired_records_sessions_and_shares_are_purged(
    harness: ServerHarness, citizen_app: EidClient, bank: Party, session: str
) -> None:
    token = citizen_app.share_via_qr(attributes=["gender"], ttl=timedelta(minutes=1)).token
    bank.client.redeem_share(token, request_id="scan-0001")
    citizen_app.share_via_qr(attributes=["gender"], ttl=timedelta(minutes=1))
    # Past the session's 30-day refresh token, so it goes too.
    harness.clock.advance(REFRESH_TTL + timedelta(days=1))
    purged = harness.run(purge_expired(harness.runtime.uow, harness.clock()))
    assert purged.sessions >= 1
    assert purged.shares == 2
    assert purged.idempotency_records >= 2
    for table in (
        "sessions",
        "shares",
        "idempotency_records",
        "credential_attempts",
        "rate_counters",
        "activation_codes",
        "outbox_deliveries",
        "outbox",
    ):
        assert harness.rows(f"SELECT count(*) FROM {table}") == [(0,)]  # noqa: S608


def test_sixteen_concurrent_duplicate_registrations_all_get_the_first_answer(
    harness: ServerHarness, citizen_app: EidClient, adult: Demographics
) -> None:
    answers = _all_at_once(lambda: register(citizen_app, adult, request_id="register-once"))
    assert all(a == answers[0] for a in answers), answers
    assert harness.rows("SELECT count(*) FROM accounts") == [(1,)]


def test_duplicates_of_a_wrong_code_spend_one_attempt(
    harness: ServerHarness, citizen_app: EidClient, adult: Demographics
) -> None:
    register(citizen_app, adult)
    code = harness.wait_for_code(phone_of(adult)[1])
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"

    answers = _all_at_once(
        lambda: citizen_app.activate(
            personal_id=adult.personal_id,
            activation_code=wrong,
            new_password=PASSWORD,
            request_id="typo-1",
        )
    )
    assert set(answers) == {"ACTIVATION_CODE_INVALID"}
    assert harness.rows("SELECT attempts FROM activation_codes") == [(1,)]
    # The citizen, typing the right code, still gets in.
    citizen_app.activate(personal_id=adult.personal_id, activation_code=code, new_password=PASSWORD)


def test_sixteen_concurrent_duplicates_of_a_wrong_one_time_code_spend_one_attempt(
    harness: ServerHarness, citizen_app: EidClient, bank: Party, adult: Demographics
) -> None:
    register_and_activate(harness, citizen_app, adult)
    seen = len(harness.sender.messages)
    bank.client.request_otp(adult.personal_id)
    code = harness.wait_for_code(phone_of(adult)[1], after=seen)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"

    answers = _all_at_once(
        lambda: bank.client.verify_one_time_code(adult.personal_id, wrong, request_id="otp-typo")
    )

    first = answers[0]
    assert not isinstance(first, str | None) and not first.verified
    assert all(a == first for a in answers), answers
    # One attempt on the code, one failure against the party, one audit entry.
    assert harness.rows("SELECT attempts FROM activation_codes WHERE purpose = 'verify'") == [(1,)]
    assert harness.rows("SELECT SUM(failures) FROM party_failures") == [(1,)]
    verifies = "SELECT count(*) FROM audit_events WHERE action = 'verify.one_time_code'"
    assert harness.rows(verifies) == [(1,)]
    assert bank.client.verify_one_time_code(adult.personal_id, code).verified


def test_sixteen_concurrent_duplicate_demographic_claims_are_answered_and_counted_once(
    harness: ServerHarness, citizen_app: EidClient, bank: Party, adult: Demographics
) -> None:
    register_and_activate(harness, citizen_app, adult)

    def claim(name: str, request_id: str) -> pb.VerifyResponse:
        return bank.client.verify_demographic(
            adult.personal_id, full_name=name, request_id=request_id
        )

    matched = _all_at_once(lambda: claim(adult.full_name, "claim-1"))
    mismatched = _all_at_once(lambda: claim(adult.full_name + " X", "claim-2"))

    for answers, verified in ((matched, True), (mismatched, False)):
        first = answers[0]
        assert not isinstance(first, str | None) and first.verified is verified
        assert all(a == first for a in answers), answers
    verifies = "SELECT outcome, count(*) FROM audit_events WHERE action = 'verify.demographic'"
    assert sorted(harness.rows(verifies + " GROUP BY outcome")) == [
        ("rejected", 1),
        ("verified", 1),
    ]
    assert harness.rows("SELECT count(*) FROM verification_receipts") == [(1,)]
    assert harness.rows("SELECT SUM(failures) FROM party_failures") == [(1,)]


def test_a_signed_out_token_gets_no_kept_answer(
    harness: ServerHarness, citizen_app: EidClient, adult: Demographics, session: str
) -> None:
    """A share's answer is kept for its retries; once the citizen signed out,
    the old token with the same request id must get nothing, neither the
    current token of the ended session nor one the app had refreshed away
    from before signing out (found by an attacker's pass: both were handed
    the share's QR token again for 24 hours)."""
    refreshed_away = session
    shared = citizen_app.share_via_qr(attributes=["full_name"], request_id="share-1")
    current = citizen_app.refresh_session().session_token
    assert citizen_app.share_via_qr(attributes=["full_name"], request_id="share-1") == shared
    citizen_app.sign_out(request_id="out-1", session_token=current)

    for token in (current, refreshed_away):
        # The same request, and the same request id for another request: the
        # ended session says so, not REQUEST_ID_REUSED (as before).
        for attributes in (["full_name"], ["gender"]):
            with pytest.raises(EidError) as caught:
                citizen_app.share_via_qr(
                    attributes=attributes, request_id="share-1", session_token=token
                )
            assert caught.value.code == grpc.StatusCode.UNAUTHENTICATED
            assert caught.value.reason == "SESSION_INVALID"
    # The sign-out itself, retried, is still answered as the first time.
    citizen_app.sign_out(request_id="out-1", session_token=current)


def test_a_lock_retried_after_it_ended_the_session_gets_its_answer_and_nothing_else(
    harness: ServerHarness, citizen_app: EidClient, session: str
) -> None:
    """Locking ends the session it was sent with: its retry still gets the
    lock's answer, but an earlier call's answer is not given any more."""
    shared = citizen_app.share_via_qr(attributes=["gender"], request_id="share-1")
    assert shared.token
    locked = citizen_app.lock_account(request_id="lock-1", session_token=session)
    assert locked.newly_locked
    again = citizen_app.lock_account(request_id="lock-1", session_token=session)
    assert again == locked
    with pytest.raises(EidError) as caught:
        citizen_app.share_via_qr(attributes=["gender"], request_id="share-1", session_token=session)
    assert caught.value.reason == "SESSION_INVALID"
