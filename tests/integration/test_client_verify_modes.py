"""The Python client's Verify modes against a real server (SQLite and PostgreSQL):
request_otp and verify_one_time_code, verify_demographic, requested scopes,
receipts checked with the published keys, and the citizen's access history."""

from __future__ import annotations

import datetime

import grpc
import pytest

from eid.v1 import identity_service_pb2 as pb
from eid_client import AsyncEidClient, EidClient, EidError
from eid_client.receipts import verify_receipt
from eid_service.domain.citizen import Demographics
from tests.integration.conftest import Party
from tests.integration.flows import PASSWORD, phone_of, register_and_activate
from tests.integration.harness import ServerHarness


@pytest.fixture
def active(harness: ServerHarness, citizen_app: EidClient, adult: Demographics) -> Demographics:
    register_and_activate(harness, citizen_app, adult)
    return adult


def test_a_one_time_code_verifies_once_with_the_asked_scopes(
    harness: ServerHarness, bank: Party, active: Demographics
) -> None:
    seen = len(harness.sender.messages)
    sent = bank.client.request_otp(active.personal_id)
    code = harness.wait_for_code(phone_of(active)[1], after=seen)
    assert "Test Bank" in harness.sender.messages[-1].body
    assert sent.expire_time.ToDatetime(tzinfo=datetime.UTC) > harness.clock()

    answer = bank.client.verify_one_time_code(active.personal_id, code, requested_scopes=["basic"])

    assert answer.verified and answer.method == pb.VERIFICATION_METHOD_ONE_TIME_CODE
    assert answer.attributes.full_name == active.full_name
    assert answer.attributes.personal_id == ""  # id_number was not asked for
    claims = verify_receipt(answer.receipt, bank.client.verification_keys(), audience=bank.party.id)
    assert (claims.subject, claims.mode, claims.verification_id) == (
        answer.subject,
        "one_time_code",
        answer.verification_id,
    )
    again = bank.client.verify_one_time_code(active.personal_id, code)
    assert not again.verified and again.receipt == ""


def test_request_otp_retried_with_its_request_id_sends_one_code(
    harness: ServerHarness, bank: Party, active: Demographics
) -> None:
    seen = len(harness.sender.messages)
    first = bank.client.request_otp(active.personal_id, request_id="otp-0001")
    harness.wait_for_code(phone_of(active)[1], after=seen)
    retried = bank.client.request_otp(active.personal_id, request_id="otp-0001")
    assert retried == first
    with pytest.raises(EidError) as refused:  # a new request within the minute
        bank.client.request_otp(active.personal_id)
    assert (refused.value.code, refused.value.reason) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "TOO_MANY_REQUESTS",
    )
    codes = [m for m in harness.sender.messages[seen:] if m.destination == phone_of(active)[1]]
    assert len(codes) == 1


def test_a_demographic_claim_is_answered_per_attribute(bank: Party, active: Demographics) -> None:
    shuffled = " ".join(reversed(active.full_name.split())).lower()
    partial = bank.client.verify_demographic(
        active.personal_id,
        full_name=shuffled,
        partial=True,
        threshold=90,
        birth_date=str(active.birth_date.year),
    )
    assert partial.verified and partial.method == pb.VERIFICATION_METHOD_DEMOGRAPHIC
    assert partial.demographic.full_name == pb.ATTRIBUTE_MATCH_MATCH
    assert partial.attributes == pb.CitizenAttributes()  # nothing is released

    wrong = bank.client.verify_demographic(
        active.personal_id,
        birth_date=active.birth_date + datetime.timedelta(days=1),
        gender=active.gender.value,
    )
    assert not wrong.verified and wrong.receipt == ""
    assert wrong.demographic == pb.DemographicResult(
        birth_date=pb.ATTRIBUTE_MATCH_NO_MATCH, gender=pb.ATTRIBUTE_MATCH_MATCH
    )

    with pytest.raises(EidError) as refused:
        bank.client.verify_demographic(active.personal_id, birth_date="1990-02-30")
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "demographic.birth_date" in {field for field, _ in refused.value.field_violations}


def test_the_citizen_reads_the_access_history_page_by_page(
    bank: Party, citizen_app: EidClient, active: Demographics
) -> None:
    by_password = bank.client.verify_password(
        personal_id=active.personal_id, password=PASSWORD, requested_scopes=["id_number"]
    )
    assert by_password.attributes == pb.CitizenAttributes(personal_id=active.personal_id)
    by_claim = bank.client.verify_demographic(active.personal_id, full_name=active.full_name)

    citizen_app.sign_in(personal_id=active.personal_id, password=PASSWORD)
    first = citizen_app.list_access_history(page_size=1)
    assert [r.verification_id for r in first.records] == [by_claim.verification_id]
    assert first.next_page_token
    newest, oldest = citizen_app.iter_access_history(page_size=1)

    assert newest.verification_id == by_claim.verification_id
    assert (newest.method, list(newest.attributes)) == (pb.VERIFICATION_METHOD_DEMOGRAPHIC, [])
    assert (oldest.verification_id, oldest.receipt) == (
        by_password.verification_id,
        by_password.receipt,
    )
    assert list(oldest.attributes) == [pb.ATTRIBUTE_PERSONAL_ID]
    assert {newest.party_name, oldest.party_name} == {"Test Bank"}
    with pytest.raises(ValueError, match="sign_in"):
        bank.client.list_access_history()  # a party has no citizen session


async def test_the_async_client_verifies_and_reads_the_history(
    harness: ServerHarness, bank: Party, active: Demographics
) -> None:
    async with AsyncEidClient(harness.target, api_key=bank.api_key) as party:
        answer = await party.verify_demographic(
            active.personal_id, full_name=active.full_name, gender=active.gender.value
        )
    async with AsyncEidClient(harness.target) as citizen:
        await citizen.sign_in(personal_id=active.personal_id, password=PASSWORD)
        ids = [r.verification_id async for r in citizen.iter_access_history()]
    assert answer.verified and answer.subject
    assert ids == [answer.verification_id]
