"""Verify's other modes through a real server: one-time code (RequestOtp),
demographic, requested scopes, pairwise subjects, signed receipts checked
with the published keys, and the citizen's access history."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import grpc
import pytest

from eid.v1 import identity_service_pb2 as pb
from eid.v1 import identity_service_pb2_grpc as pb_grpc
from eid_client.client import EidClient
from eid_client.errors import error_from_rpc_error
from eid_client.offline import KeySet
from eid_client.receipts import verify_receipt
from eid_service.domain.citizen import Demographics
from eid_service.domain.share import Attribute
from tests.integration.flows import PASSWORD, phone_of, register, register_and_activate
from tests.integration.harness import ServerHarness


@pytest.fixture
def stub(harness: ServerHarness) -> Iterator[pb_grpc.IdentityServiceStub]:
    with grpc.insecure_channel(harness.target) as channel:
        yield pb_grpc.IdentityServiceStub(channel)


@pytest.fixture
def active(harness: ServerHarness, citizen_app: EidClient, adult: Demographics) -> Demographics:
    register_and_activate(harness, citizen_app, adult)
    return adult


def _key(
    harness: ServerHarness, name: str, scopes: tuple[Attribute, ...] = tuple(Attribute)
) -> str:
    return harness.create_party(name, scopes=scopes)[1]


def _as(api_key: str) -> tuple[tuple[str, str], ...]:
    return (("x-api-key", api_key),)


def _reason(call: pytest.ExceptionInfo[grpc.RpcError]) -> tuple[grpc.StatusCode, str | None]:
    error = error_from_rpc_error(call.value)
    return error.code, error.reason


def _published(stub: pb_grpc.IdentityServiceStub) -> KeySet:
    keys = stub.GetVerificationKeys(pb.GetVerificationKeysRequest())
    return KeySet.from_jwks(keys.jwks_json)


def _otp(
    harness: ServerHarness, stub: pb_grpc.IdentityServiceStub, key: str, citizen: Demographics
) -> str:
    seen = len(harness.sender.messages)
    stub.RequestOtp(pb.RequestOtpRequest(personal_id=citizen.personal_id), metadata=_as(key))
    return harness.wait_for_code(phone_of(citizen)[1], after=seen)


def test_one_time_code_verifies_once_with_a_receipt_anyone_can_check(
    harness: ServerHarness, stub: pb_grpc.IdentityServiceStub, active: Demographics
) -> None:
    key = _key(harness, "Ngân hàng Thử")
    code = _otp(harness, stub, key, active)
    sms = harness.sender.messages[-1].body
    assert "Ngân hàng Thử" in sms and code in sms

    request = pb.VerifyRequest(
        one_time_code=pb.OneTimeCodeCredential(personal_id=active.personal_id, code=code),
        requested_scopes=[pb.SCOPE_BASIC],
    )
    answer = stub.Verify(request, metadata=_as(key))
    assert answer.verified and answer.method == pb.VERIFICATION_METHOD_ONE_TIME_CODE
    assert answer.attributes.full_name == active.full_name
    assert answer.attributes.personal_id == ""  # not asked for
    claims = verify_receipt(answer.receipt, _published(stub))
    assert (claims.subject, claims.verification_id, claims.mode) == (
        answer.subject,
        answer.verification_id,
        "one_time_code",
    )
    assert claims.attributes == ("birth_date", "full_name", "gender")

    again = stub.Verify(request, metadata=_as(key))
    assert not again.verified and again.receipt == "" and again.subject == ""


def test_a_code_is_useless_to_another_party(
    harness: ServerHarness, stub: pb_grpc.IdentityServiceStub, active: Demographics
) -> None:
    bank, telco = _key(harness, "Bank"), _key(harness, "Telco")
    code = _otp(harness, stub, bank, active)
    credential = pb.OneTimeCodeCredential(personal_id=active.personal_id, code=code)

    assert not stub.Verify(pb.VerifyRequest(one_time_code=credential), metadata=_as(telco)).verified
    assert stub.Verify(pb.VerifyRequest(one_time_code=credential), metadata=_as(bank)).verified


def test_request_otp_is_limited_per_party_and_citizen(
    harness: ServerHarness, stub: pb_grpc.IdentityServiceStub, active: Demographics
) -> None:
    key = _key(harness, "Bank")
    _otp(harness, stub, key, active)
    with pytest.raises(grpc.RpcError) as refused:
        stub.RequestOtp(pb.RequestOtpRequest(personal_id=active.personal_id), metadata=_as(key))
    assert _reason(refused) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_REQUESTS")


def test_one_party_cannot_lock_a_citizen_out_of_codes_at_the_others(
    harness: ServerHarness, stub: pb_grpc.IdentityServiceStub, active: Demographics
) -> None:
    """A party that knows only the ID number asks a code a minute, within its
    own limit, until its day is spent; the citizen's bank still gets one.
    Before, ten such requests spent the citizen's day at every party (found
    by an attacker's pass)."""
    now = harness.clock()
    # Just past midnight: the day windows hold the whole test.
    midnight = now.replace(hour=0, minute=0, second=1, microsecond=0) + timedelta(days=1)
    harness.clock.advance(midnight - now)
    hostile, bank = _key(harness, "Hostile shop"), _key(harness, "Citizen's bank")
    request = pb.RequestOtpRequest(personal_id=active.personal_id)
    refusals = []
    for _ in range(harness.send_limits.otp_per_party_citizen_day.hits + 1):
        try:
            stub.RequestOtp(request, metadata=_as(hostile))
        except grpc.RpcError as refused:
            refusals.append(error_from_rpc_error(refused).reason)
        harness.clock.advance(timedelta(seconds=61))
    assert refusals == ["TOO_MANY_REQUESTS"]  # the hostile party's own day is spent
    assert stub.RequestOtp(request, metadata=_as(bank)).HasField("expire_time")


# Well formed ID numbers nobody registered.
NOBODY = ("079085000001", "079085000002")


def _cost(
    harness: ServerHarness, decryptions: Callable[[], int], call: Callable[[], object]
) -> tuple[int, int]:
    """The statements and decryptions a call costs the server."""
    time.sleep(0.3)  # the outbox dispatcher is done with the call before
    statements, opened = harness.statements, decryptions()
    call()
    return harness.statements - statements, decryptions() - opened


@pytest.mark.parametrize("activated", [True, False], ids=["active", "pending"])
def test_asking_a_code_costs_the_same_whoever_the_number_names(
    harness: ServerHarness,
    stub: pb_grpc.IdentityServiceStub,
    citizen_app: EidClient,
    adult: Demographics,
    decryptions: Callable[[], int],
    activated: bool,
) -> None:
    """Before, an account's every sealed field was opened (5) and none for
    an unknown number, sent or not (found by an attacker's pass)."""
    if activated:
        register_and_activate(harness, citizen_app, adult)
    else:
        register(citizen_app, adult)
    key = _key(harness, "Prober")

    def ask(pid: str) -> Callable[[], object]:
        return lambda: stub.RequestOtp(pb.RequestOtpRequest(personal_id=pid), metadata=_as(key))

    _cost(harness, decryptions, ask(NOBODY[0]))  # the party and keys cached
    assert _cost(harness, decryptions, ask(adult.personal_id)) == _cost(
        harness, decryptions, ask(NOBODY[1])
    )


def test_a_wrong_code_costs_the_same_whoever_the_number_names(
    harness: ServerHarness,
    stub: pb_grpc.IdentityServiceStub,
    active: Demographics,
    decryptions: Callable[[], int],
) -> None:
    """Before, a wrong guess at a code really sent counted it (one statement
    more than for an unknown number; found by an attacker's pass)."""
    key = _key(harness, "Prober")
    for pid in (*NOBODY, active.personal_id):
        stub.RequestOtp(pb.RequestOtpRequest(personal_id=pid), metadata=_as(key))

    def guess(pid: str) -> Callable[[], object]:
        credential = pb.OneTimeCodeCredential(personal_id=pid, code="000000")
        request = pb.VerifyRequest(one_time_code=credential)
        return lambda: stub.Verify(request, metadata=_as(key))

    _cost(harness, decryptions, guess(NOBODY[0]))
    assert _cost(harness, decryptions, guess(active.personal_id)) == _cost(
        harness, decryptions, guess(NOBODY[1])
    )


def test_demographic_answers_per_attribute_and_releases_nothing(
    harness: ServerHarness, stub: pb_grpc.IdentityServiceStub, active: Demographics
) -> None:
    key = _key(harness, "Hospital")
    claim = pb.DemographicCredential(
        personal_id=active.personal_id,
        full_name=active.full_name.upper(),
        name_match=pb.NAME_MATCH_STRATEGY_PARTIAL,
        birth_date=str(active.birth_date.year + 1),
    )

    answer = stub.Verify(pb.VerifyRequest(demographic=claim), metadata=_as(key))

    assert not answer.verified and answer.method == pb.VERIFICATION_METHOD_DEMOGRAPHIC
    assert answer.demographic == pb.DemographicResult(
        full_name=pb.ATTRIBUTE_MATCH_MATCH,
        full_name_score=100,
        birth_date=pb.ATTRIBUTE_MATCH_NO_MATCH,
        gender=pb.ATTRIBUTE_MATCH_UNSPECIFIED,
    )
    assert answer.attributes == pb.CitizenAttributes()

    claim.birth_date = active.birth_date.isoformat()
    matched = stub.Verify(pb.VerifyRequest(demographic=claim), metadata=_as(key))
    assert matched.verified and matched.attributes == pb.CitizenAttributes()
    assert verify_receipt(matched.receipt, _published(stub)).attributes == ()


def test_a_near_miss_answers_as_a_claim_about_nobody_does(
    harness: ServerHarness,
    stub: pb_grpc.IdentityServiceStub,
    active: Demographics,
    adults: list[Demographics],
) -> None:
    """The family name alone, PARTIAL: no match for the active account, and
    no score, exactly as for a registry person with no account. A score
    under the threshold would tell an account from none, and guide a party
    (with no right to the name) letter by letter to the stored name."""
    key = _key(harness, "Lender", scopes=(Attribute.PERSONAL_ID,))
    nobody = next(a for a in adults if a.personal_id != active.personal_id)

    def family_name_claim(citizen: Demographics) -> pb.VerifyResponse:
        claim = pb.DemographicCredential(
            personal_id=citizen.personal_id,
            full_name=citizen.full_name.split()[0],
            name_match=pb.NAME_MATCH_STRATEGY_PARTIAL,
        )
        return stub.Verify(pb.VerifyRequest(demographic=claim), metadata=_as(key))

    near, unknown = family_name_claim(active), family_name_claim(nobody)
    assert (near.verified, near.demographic) == (unknown.verified, unknown.demographic)
    assert near.demographic == pb.DemographicResult(
        full_name=pb.ATTRIBUTE_MATCH_NO_MATCH,
        full_name_score=0,
        birth_date=pb.ATTRIBUTE_MATCH_UNSPECIFIED,
        gender=pb.ATTRIBUTE_MATCH_UNSPECIFIED,
    )
    # Nor may the party lower the bar until any guess matches and is scored.
    loose = pb.DemographicCredential(
        personal_id=active.personal_id,
        full_name=active.full_name.split()[0],
        name_match=pb.NAME_MATCH_STRATEGY_PARTIAL,
        name_threshold=50,
    )
    with pytest.raises(grpc.RpcError) as refused:
        stub.Verify(pb.VerifyRequest(demographic=loose), metadata=_as(key))
    assert _reason(refused) == (grpc.StatusCode.INVALID_ARGUMENT, "NAME_THRESHOLD_INVALID")


@pytest.mark.parametrize(
    ("claim", "field"),
    [
        (pb.DemographicCredential(personal_id="079090000001"), "demographic"),
        (pb.DemographicCredential(personal_id="1", full_name="An"), "demographic.personal_id"),
        (
            pb.DemographicCredential(personal_id="079090000001", birth_date="1990-02-30"),
            "demographic.birth_date",
        ),
        (
            pb.DemographicCredential(personal_id="079090000001", gender=7),  # type: ignore[arg-type]
            "demographic.gender",
        ),
    ],
)
def test_bad_demographic_claims_name_their_field(
    harness: ServerHarness,
    stub: pb_grpc.IdentityServiceStub,
    claim: pb.DemographicCredential,
    field: str,
) -> None:
    key = _key(harness, "Hospital")
    with pytest.raises(grpc.RpcError) as refused:
        stub.Verify(pb.VerifyRequest(demographic=claim), metadata=_as(key))
    error = error_from_rpc_error(refused.value)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert field in {name for name, _ in error.field_violations}


def _encoded(personal_id: str) -> tuple[pb.Gender.ValueType, str]:
    """What a 12-digit ID number itself tells: the gender (4th digit, even
    for male) and the birth year (the 4th digit's century, the 5th-6th)."""
    digit = int(personal_id[3])
    gender = pb.GENDER_MALE if digit % 2 == 0 else pb.GENDER_FEMALE
    return gender, str(1900 + digit // 2 * 100 + int(personal_id[4:6]))


@pytest.mark.parametrize("claimed", ["gender", "year", "both"])
def test_a_claim_of_only_what_the_id_number_encodes_is_refused(
    harness: ServerHarness,
    stub: pb_grpc.IdentityServiceStub,
    active: Demographics,
    adults: list[Demographics],
    claimed: str,
) -> None:
    """A party that knows only an ID number claims the gender (or birth
    year) the number encodes. Before, that answered verified for an active
    account and not for a number without one, in one call that never
    counted a failure against an account, and left the party a receipt that
    subscribed it to the citizen's status events (found by an attacker's
    pass). Now refused before any lookup, alike for both, and nothing is
    written."""
    key = _key(harness, "Snoop")
    nobody = next(a for a in adults if a.personal_id != active.personal_id)
    verifications = "SELECT id FROM audit_events WHERE action LIKE 'verify.%'"
    receipts = "SELECT id FROM verification_receipts"
    before = harness.rows(verifications)

    def refusal(pid: str) -> tuple[object, ...]:
        gender, year = _encoded(pid)
        claim = pb.DemographicCredential(
            personal_id=pid,
            gender=gender if claimed != "year" else pb.GENDER_UNSPECIFIED,
            birth_date=year if claimed != "gender" else "",
        )
        with pytest.raises(grpc.RpcError) as refused:
            stub.Verify(pb.VerifyRequest(demographic=claim), metadata=_as(key))
        e = error_from_rpc_error(refused.value)
        return e.code, e.reason, e.message, e.field_violations, e.violation_reasons

    answer = refusal(active.personal_id)
    assert answer[:2] == (grpc.StatusCode.INVALID_ARGUMENT, "DEMOGRAPHIC_CLAIM_TOO_WEAK")
    assert answer[4] == {"demographic": "DEMOGRAPHIC_CLAIM_TOO_WEAK"}
    assert refusal(nobody.personal_id) == answer
    assert harness.rows(verifications) == before
    assert harness.rows(receipts) == []

    # The name, or the full birth date, is more than the number tells.
    for claim in (
        pb.DemographicCredential(personal_id=active.personal_id, full_name=active.full_name),
        pb.DemographicCredential(
            personal_id=active.personal_id, birth_date=active.birth_date.isoformat()
        ),
    ):
        assert stub.Verify(pb.VerifyRequest(demographic=claim), metadata=_as(key)).verified


def test_asking_beyond_the_party_scopes_is_refused(
    harness: ServerHarness, stub: pb_grpc.IdentityServiceStub, active: Demographics
) -> None:
    key = _key(harness, "Age check", scopes=(Attribute.BIRTH_DATE,))
    request = pb.VerifyRequest(
        password=pb.PasswordCredential(personal_id=active.personal_id, password=PASSWORD),
        requested_scopes=[pb.SCOPE_ID_NUMBER],
    )
    with pytest.raises(grpc.RpcError) as refused:
        stub.Verify(request, metadata=_as(key))
    assert _reason(refused) == (grpc.StatusCode.PERMISSION_DENIED, "SCOPE_NOT_ALLOWED")


def test_pairwise_subjects_differ_across_parties_and_the_history_shows_both(
    harness: ServerHarness,
    stub: pb_grpc.IdentityServiceStub,
    citizen_app: EidClient,
    active: Demographics,
) -> None:
    bank, telco = _key(harness, "Bank"), _key(harness, "Telco")
    credential = pb.PasswordCredential(personal_id=active.personal_id, password=PASSWORD)
    by_bank = [
        stub.Verify(pb.VerifyRequest(password=credential), metadata=_as(bank)) for _ in range(2)
    ]
    by_telco = stub.Verify(pb.VerifyRequest(password=credential), metadata=_as(telco))
    assert by_bank[0].subject == by_bank[1].subject != by_telco.subject

    session = citizen_app.sign_in(personal_id=active.personal_id, password=PASSWORD)
    bearer = (("authorization", f"Bearer {session.session_token}"),)
    first = stub.ListAccessHistory(pb.ListAccessHistoryRequest(page_size=2), metadata=bearer)
    rest = stub.ListAccessHistory(
        pb.ListAccessHistoryRequest(page_size=2, page_token=first.next_page_token),
        metadata=bearer,
    )
    records = list(first.records) + list(rest.records)
    assert [r.verification_id for r in records] == [
        by_telco.verification_id,
        by_bank[1].verification_id,
        by_bank[0].verification_id,
    ]
    assert records[0].party_name == "Telco" and records[0].receipt == by_telco.receipt
    assert rest.next_page_token == ""

    with pytest.raises(grpc.RpcError) as refused:
        stub.ListAccessHistory(pb.ListAccessHistoryRequest(), metadata=_as(bank))
    assert _reason(refused)[0] == grpc.StatusCode.UNAUTHENTICATED
