"""Register: declared data must match the registry; nothing is created otherwise."""

from __future__ import annotations

import time
from datetime import date

import grpc
import pytest

from eid.v1 import identity_service_pb2 as pb
from eid_client.client import EidClient
from eid_client.errors import EidError
from eid_service.demo import portrait_capture
from eid_service.domain.citizen import Demographics, Gender
from eid_service.domain.personal_id import make_personal_id
from tests.integration.flows import phone_of, register, register_and_activate
from tests.integration.harness import ServerHarness


def account_count(harness: ServerHarness) -> int:
    return len(harness.rows("SELECT id FROM accounts"))


def test_register_creates_pending_account_and_sends_code(
    harness: ServerHarness, citizen_app: EidClient, adult: Demographics
) -> None:
    national, e164 = phone_of(adult)
    response = citizen_app.register(
        personal_id=adult.personal_id,
        full_name=adult.full_name,
        birth_date=adult.birth_date,
        gender=adult.gender.value,
        phone_number=national,
        email="citizen@example.com",
        portrait=portrait_capture(adult.personal_id),
    )
    assert response.personal_id == adult.personal_id  # the username
    assert response.account.state == pb.ACCOUNT_STATE_PENDING
    assert response.account.level == pb.ACCOUNT_LEVEL_1
    assert response.account.account_id
    assert response.delivery.channel == pb.DELIVERY_CHANNEL_SMS
    assert response.delivery.masked_destination.endswith(e164[-3:])
    assert e164[3:-3] not in response.delivery.masked_destination
    code = harness.wait_for_code(e164)
    assert len(code) == 6
    assert account_count(harness) == 1


def test_name_matching_ignores_case_and_spacing(
    harness: ServerHarness, citizen_app: EidClient, adult: Demographics
) -> None:
    register(citizen_app, adult, full_name="  " + adult.full_name.upper().replace(" ", "   "))
    assert account_count(harness) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [("full_name", "Someone Else Entirely"), ("birth_date", "shift-a-day")],
)
def test_demographic_mismatch_creates_nothing(
    harness: ServerHarness, citizen_app: EidClient, adult: Demographics, field: str, value: str
) -> None:
    if value == "shift-a-day":
        # Same century, year and gender, so the ID number stays consistent.
        day = 2 if adult.birth_date.day == 1 else 1
        value = adult.birth_date.replace(day=day).isoformat()
    with pytest.raises(EidError) as caught:
        register(citizen_app, adult, **{field: value})
    assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert caught.value.reason == "REGISTRY_MISMATCH"
    assert account_count(harness) == 0
    assert harness.sender.messages == []


def test_unknown_id_number_is_answered_as_a_mismatch(
    harness: ServerHarness, citizen_app: EidClient
) -> None:
    """The same status, reason and message as for declared data that differ:
    Register does not tell who is in the population registry."""
    stranger = Demographics(
        make_personal_id("001", date(1985, 3, 4), Gender.MALE, 999_999).value,
        "Người Lạ",
        date(1985, 3, 4),
        Gender.MALE,
    )
    with pytest.raises(EidError) as caught:
        register(citizen_app, stranger)
    assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert caught.value.reason == "REGISTRY_MISMATCH"
    assert caught.value.message == (
        "the declared data and portrait do not match the population registry"
    )
    assert stranger.personal_id not in str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        ({"personal_id": "12345"}, "personal_id", "PERSONAL_ID_MALFORMED"),
        ({"personal_id": "00119000001x"}, "personal_id", "PERSONAL_ID_MALFORMED"),
        ({"personal_id": "999190000001"}, "personal_id", "PERSONAL_ID_UNKNOWN_PROVINCE"),
        ({"phone_number": "12345"}, "phone_number", "PHONE_NUMBER_INVALID"),
        ({"phone_number": "0212345678"}, "phone_number", "PHONE_NUMBER_INVALID"),
        ({"email": "not-an-email"}, "email", "EMAIL_INVALID"),
        ({"birth_date": "17/05/1990"}, "birth_date", "BIRTH_DATE_INVALID"),
        ({"full_name": ""}, "full_name", "FULL_NAME_INVALID"),
    ],
)
def test_malformed_input_is_invalid_argument_with_field(
    harness: ServerHarness,
    citizen_app: EidClient,
    adult: Demographics,
    overrides: dict[str, str],
    field: str,
    reason: str,
) -> None:
    with pytest.raises(EidError) as caught:
        register(citizen_app, adult, **overrides)
    error = caught.value
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.reason == reason
    assert [f for f, _ in error.field_violations] == [field]
    assert account_count(harness) == 0


def test_all_bad_fields_are_reported_at_once(citizen_app: EidClient, adult: Demographics) -> None:
    with pytest.raises(EidError) as caught:
        register(citizen_app, adult, personal_id="1", phone_number="2", email="x")
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    fields = {f for f, _ in caught.value.field_violations}
    assert fields == {"personal_id", "phone_number", "email"}


def test_gender_contradicting_the_id_number_is_refused(
    citizen_app: EidClient, adult: Demographics
) -> None:
    other = "female" if adult.gender is Gender.MALE else "male"
    with pytest.raises(EidError) as caught:
        register(citizen_app, adult, gender=other)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.reason == "PERSONAL_ID_INCONSISTENT"


def test_child_under_14_cannot_self_register(
    harness: ServerHarness, citizen_app: EidClient, child: Demographics
) -> None:
    with pytest.raises(EidError) as caught:
        register(citizen_app, child)
    assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert caught.value.reason == "AGE_BELOW_MINIMUM"
    assert account_count(harness) == 0


def test_registering_again_while_pending_points_to_resend(
    harness: ServerHarness, citizen_app: EidClient, adult: Demographics
) -> None:
    register(citizen_app, adult)
    with pytest.raises(EidError) as caught:
        register(citizen_app, adult)
    assert caught.value.code == grpc.StatusCode.ALREADY_EXISTS
    assert caught.value.reason == "ACCOUNT_PENDING"
    assert "ResendActivationCode" in caught.value.message
    assert account_count(harness) == 1


def test_second_registration_of_an_active_account_is_already_exists(
    harness: ServerHarness, citizen_app: EidClient, adult: Demographics
) -> None:
    register_and_activate(harness, citizen_app, adult)
    with pytest.raises(EidError) as caught:
        register(citizen_app, adult)
    assert caught.value.code == grpc.StatusCode.ALREADY_EXISTS
    assert caught.value.reason == "ACCOUNT_ALREADY_EXISTS"


def test_retry_with_same_request_id_returns_first_response_once(
    harness: ServerHarness, citizen_app: EidClient, adults: list[Demographics]
) -> None:
    first_citizen, second_citizen = adults[0], adults[1]
    first = register(citizen_app, first_citizen, request_id="retry-1")
    again = register(citizen_app, first_citizen, request_id="retry-1")
    assert again == first
    assert account_count(harness) == 1
    assert len(harness.rows("SELECT id FROM outbox")) == 1  # one SMS queued, not two
    # Another person's call with the same id is their own: anonymous request
    # ids are scoped to the person they name.
    other = register(citizen_app, second_citizen, request_id="retry-1")
    assert other.personal_id == second_citizen.personal_id != first.personal_id
    assert account_count(harness) == 2
    # Other data under the same id is another request (calls without
    # credentials are scoped by their content), refused on its own merits.
    with pytest.raises(EidError) as caught:
        register(citizen_app, first_citizen, request_id="retry-1", email="an@example.vn")
    assert caught.value.reason == "ACCOUNT_PENDING"
    assert account_count(harness) == 2


def test_personal_data_is_not_stored_in_clear(
    harness: ServerHarness, citizen_app: EidClient, adult: Demographics
) -> None:
    register(citizen_app, adult)
    harness.wait_for_code(phone_of(adult)[1])

    stored = b"".join(
        repr(row).encode()
        for table in ("accounts", "registry_citizens", "activation_codes", "outbox")
        for row in harness.rows(f"SELECT * FROM {table}")  # noqa: S608
    )
    for secret in (adult.personal_id, adult.full_name, phone_of(adult)[1][3:]):
        assert secret.encode() not in stored
        assert secret.encode("unicode_escape") not in stored
    # Delivered messages keep no copy of the code: the body is dropped as the
    # delivery is recorded, just after the phone has it.
    deadline = time.monotonic() + 10
    while harness.rows("SELECT body_enc FROM outbox") != [(None,)]:
        assert time.monotonic() < deadline, "a delivered message kept its body"
        time.sleep(0.02)
