"""Verify by password: a verdict, the level and only the attributes the party may read."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import grpc
import pytest

from eid.v1 import identity_service_pb2 as pb
from eid.v1 import identity_service_pb2_grpc as pb_grpc
from eid_client.client import EidClient
from eid_client.errors import EidError, error_from_rpc_error
from eid_service.domain.citizen import Demographics, Gender
from eid_service.domain.personal_id import make_personal_id
from eid_service.domain.share import Attribute
from eid_service.use_cases.context import MAX_PARTY_FAILURES
from eid_service.use_cases.ports import Repositories
from tests.integration.conftest import Party
from tests.integration.flows import PASSWORD, register_and_activate
from tests.integration.harness import ServerHarness


@pytest.fixture
def active(harness: ServerHarness, citizen_app: EidClient, adult: Demographics) -> Demographics:
    register_and_activate(harness, citizen_app, adult)
    return adult


def test_right_password_verifies_with_attributes(bank: Party, active: Demographics) -> None:
    result = bank.client.verify_password(personal_id=active.personal_id, password=PASSWORD)
    assert result.verified is True
    assert result.method == pb.VERIFICATION_METHOD_PASSWORD
    assert result.level == pb.ACCOUNT_LEVEL_1
    assert result.attributes.personal_id == active.personal_id
    assert result.attributes.full_name == active.full_name
    assert result.attributes.birth_date == active.birth_date.isoformat()
    assert result.attributes.gender in (pb.GENDER_MALE, pb.GENDER_FEMALE)
    assert result.verification_id


def test_party_scopes_cap_released_attributes(harness: ServerHarness, active: Demographics) -> None:
    _, key = harness.create_party("Age Checker", scopes=[Attribute.BIRTH_DATE])
    with EidClient(harness.target, api_key=key) as client:
        result = client.verify_password(personal_id=active.personal_id, password=PASSWORD)
    assert result.verified is True
    assert result.attributes == pb.CitizenAttributes(birth_date=active.birth_date.isoformat())


@pytest.mark.parametrize("who", ["wrong password", "unknown id", "pending account"])
def test_failed_verification_says_nothing_more(
    harness: ServerHarness,
    citizen_app: EidClient,
    bank: Party,
    adults: list[Demographics],
    who: str,
) -> None:
    register_and_activate(harness, citizen_app, adults[0])
    if who == "wrong password":
        pid, password = adults[0].personal_id, PASSWORD + "x"
    elif who == "unknown id":
        pid, password = adults[1].personal_id, PASSWORD
    else:
        from tests.integration.flows import register

        register(citizen_app, adults[2])
        pid, password = adults[2].personal_id, PASSWORD
    result = bank.client.verify_password(personal_id=pid, password=password)
    assert result.verified is False
    assert result.level == pb.ACCOUNT_LEVEL_UNSPECIFIED
    # Not even an empty attributes message: clients test for its presence.
    assert not result.HasField("attributes")


def test_repeated_wrong_passwords_throttle_the_account(bank: Party, active: Demographics) -> None:
    for _ in range(5):
        result = bank.client.verify_password(personal_id=active.personal_id, password="nope-nope-1")
        assert result.verified is False
    with pytest.raises(EidError) as caught:
        bank.client.verify_password(personal_id=active.personal_id, password=PASSWORD)
    assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert caught.value.reason == "TOO_MANY_FAILED_ATTEMPTS"
    assert int(caught.value.metadata["retry_after_seconds"]) > 0


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [((), "API_KEY_MISSING"), ((("x-api-key", "eidk_not-a-real-key"),), "API_KEY_INVALID")],
)
def test_calls_without_a_valid_api_key_are_unauthenticated(
    harness: ServerHarness,
    active: Demographics,
    metadata: tuple[tuple[str, str], ...],
    reason: str,
) -> None:
    request = pb.VerifyRequest(
        password=pb.PasswordCredential(personal_id=active.personal_id, password=PASSWORD)
    )
    with grpc.insecure_channel(harness.target) as channel:
        stub = pb_grpc.IdentityServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.Verify(request, metadata=metadata, timeout=5)
    error = error_from_rpc_error(caught.value)
    assert error.code == grpc.StatusCode.UNAUTHENTICATED
    assert error.reason == reason


def test_verify_without_credential_is_invalid(harness: ServerHarness, bank: Party) -> None:
    with grpc.insecure_channel(harness.target) as channel:
        stub = pb_grpc.IdentityServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.Verify(pb.VerifyRequest(), metadata=(("x-api-key", bank.api_key),), timeout=5)
    error = error_from_rpc_error(caught.value)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.reason == "CREDENTIAL_MISSING"


def test_verifications_are_in_the_tamper_evident_history(
    harness: ServerHarness, bank: Party, active: Demographics
) -> None:
    good = bank.client.verify_password(personal_id=active.personal_id, password=PASSWORD)
    bank.client.verify_password(personal_id=active.personal_id, password="wrong-password-1")

    def history(r: Repositories) -> tuple[list[tuple[str, str, str | None]], bool]:
        subject = r.accounts.credential(active.personal_id).subject
        events = r.audit.history(subject)
        intact = r.audit.check_chain(subject).broken is None
        return [(e.action, e.outcome, e.party_id) for e in events], intact

    events, intact = harness.in_uow(history)
    assert ("verify.password", "verified", bank.party.id) in events
    assert ("verify.password", "rejected", bank.party.id) in events
    assert intact
    assert good.verification_id
    # Editing any past event breaks the chain.
    harness.execute("UPDATE audit_events SET outcome = 'rejected'")

    def intact_after(r: Repositories) -> bool:
        subject = r.accounts.credential(active.personal_id).subject
        return r.audit.check_chain(subject).broken is None

    assert harness.in_uow(intact_after) is False


def test_a_party_guessing_many_accounts_is_throttled(
    harness: ServerHarness, bank: Party, active: Demographics
) -> None:
    unknown = [
        make_personal_id("001", date(1980, 1, 1), Gender.MALE, serial).value
        for serial in range(MAX_PARTY_FAILURES)
    ]

    def guess(pid: str) -> bool:
        return bank.client.verify_password(personal_id=pid, password="guess-guess").verified

    with ThreadPoolExecutor(8) as pool:
        assert not any(pool.map(guess, unknown))
    with pytest.raises(EidError) as caught:
        bank.client.verify_password(personal_id=active.personal_id, password=PASSWORD)
    assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert caught.value.reason == "PARTY_THROTTLED"
    # Other parties are not affected, and the party recovers after the window.
    _, other_key = harness.create_party("Other Bank")
    with EidClient(harness.target, api_key=other_key) as other:
        assert other.verify_password(personal_id=active.personal_id, password=PASSWORD).verified
    harness.clock.advance(timedelta(minutes=1, seconds=1))
    assert bank.client.verify_password(personal_id=active.personal_id, password=PASSWORD).verified
