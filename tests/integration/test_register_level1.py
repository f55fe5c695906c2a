"""Level-1 registration through the gRPC API, on each database kind: the
portrait the app captured must match the enrolled one; foreigners register
with their passport and sign in with the number the registry assigned them;
nothing tells which part of a refused registration failed."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, cast

import grpc
import pytest

from eid.v1 import identity_service_pb2 as pb
from eid.v1 import identity_service_pb2_grpc as pb_grpc
from eid_client import Passport
from eid_client.client import EidClient
from eid_client.errors import EidError
from eid_service.demo import demo_foreigners, portrait_capture
from eid_service.domain.citizen import Demographics
from eid_service.domain.portrait import PortraitPolicy
from eid_service.domain.registry_person import RegistryPerson
from tests.integration.conftest import Party
from tests.integration.flows import PASSWORD, phone_of, register
from tests.integration.harness import ServerHarness

KIM = demo_foreigners()[0]  # Kim Min-jun, KOR, passport M12345678
KIM_PHONE, KIM_E164 = "0912000111", "+84912000111"


def _passport_of(person: RegistryPerson, **changes: str) -> Passport:
    p = person.passport
    assert p is not None
    declared = Passport(p.number, p.nationality, p.issue_date.isoformat(), p.issue_place)
    return replace(declared, **changes)


def register_foreigner(
    app: EidClient, person: RegistryPerson, passport: Passport | None = None, **changes: Any
) -> pb.RegisterResponse:
    d = person.demographics
    fields: dict[str, Any] = {
        "full_name": d.full_name,
        "birth_date": d.birth_date,
        "gender": d.gender.value,
        "phone_number": KIM_PHONE,
        "portrait": portrait_capture(d.personal_id),
        "passport": passport or _passport_of(person),
    }
    fields.update(changes)
    return app.register(**fields)


def accounts(harness: ServerHarness) -> int:
    return len(harness.rows("SELECT id FROM accounts"))


def refusal(call: Any) -> EidError:
    with pytest.raises(EidError) as caught:
        call()
    return caught.value


@pytest.fixture
def with_foreigners(harness: ServerHarness) -> ServerHarness:
    harness.add_people(demo_foreigners())
    return harness


# ---- the portrait --------------------------------------------------------------


def test_a_capture_just_above_the_threshold_registers_and_just_below_creates_nothing(
    harness: ServerHarness, citizen_app: EidClient, adults: list[Demographics]
) -> None:
    lan, minh = adults[:2]
    below = refusal(
        lambda: register(citizen_app, lan, portrait=portrait_capture(lan.personal_id, 0.59))
    )
    assert (below.code, below.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "REGISTRY_MISMATCH")
    assert accounts(harness) == 0
    assert harness.sender.messages == []

    above = register(citizen_app, minh, portrait=portrait_capture(minh.personal_id, 0.61))
    assert above.account.state == pb.ACCOUNT_STATE_PENDING
    assert accounts(harness) == 1


@pytest.fixture
def strict_harness(database_url: str) -> Iterator[ServerHarness]:
    """A server told EID_PORTRAIT_MATCH_THRESHOLD=0.8."""
    h = ServerHarness(database_url, portrait=PortraitPolicy(0.8)).start()
    try:
        yield h
    finally:
        h.stop()


def test_the_threshold_is_the_configured_one(
    strict_harness: ServerHarness, adults: list[Demographics]
) -> None:
    lan = adults[0]
    strict_harness.add_citizens([lan])
    with EidClient(strict_harness.target) as app:
        # Enough for the default threshold (0.60), not for this server's.
        error = refusal(
            lambda: register(app, lan, portrait=portrait_capture(lan.personal_id, 0.79))
        )
        assert error.reason == "REGISTRY_MISMATCH"
        register(app, lan, portrait=portrait_capture(lan.personal_id, 0.81))
    assert accounts(strict_harness) == 1


def test_someone_elses_face_is_a_mismatch(
    harness: ServerHarness, citizen_app: EidClient, adults: list[Demographics]
) -> None:
    lan, minh = adults[:2]
    error = refusal(lambda: register(citizen_app, lan, portrait=portrait_capture(minh.personal_id)))
    assert error.reason == "REGISTRY_MISMATCH"
    assert accounts(harness) == 0


def test_a_missing_portrait_is_invalid_argument_naming_the_field(
    harness: ServerHarness, citizen_app: EidClient, adult: Demographics
) -> None:
    error = refusal(lambda: register(citizen_app, adult, portrait=b""))
    assert (error.code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "PORTRAIT_REQUIRED")
    assert [f for f, _ in error.field_violations] == ["portrait"]
    assert "128" in error.message
    assert accounts(harness) == 0


@pytest.mark.parametrize(
    ("portrait", "says"),
    [
        (b"\x00" * 511, "got 511 bytes"),
        (struct.pack("<128f", *[0.5] * 127, float("nan")), "not a finite number"),
        (struct.pack("<128f", *[0.0] * 128), "all zeros"),
        (struct.pack("<64f", *[0.5] * 64), "128 float32 values (512 bytes)"),
    ],
    ids=["short", "nan", "zeros", "a-fingerprint"],
)
def test_a_malformed_portrait_is_biometric_template_invalid(
    harness: ServerHarness,
    citizen_app: EidClient,
    adult: Demographics,
    portrait: bytes,
    says: str,
) -> None:
    error = refusal(lambda: register(citizen_app, adult, portrait=portrait))
    assert (error.code, error.reason) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "BIOMETRIC_TEMPLATE_INVALID",
    )
    assert [f for f, _ in error.field_violations] == ["portrait"]
    assert says in error.message
    assert accounts(harness) == 0


def test_a_person_with_no_enrolled_portrait_cannot_register_in_the_app(
    harness: ServerHarness, citizen_app: EidClient, adult: Demographics
) -> None:
    unenrolled = replace(adult, personal_id=adult.personal_id[:-6] + "000777")
    harness.add_people([RegistryPerson(unenrolled)])  # no portrait
    error = refusal(lambda: register(citizen_app, unenrolled))
    assert error.reason == "REGISTRY_MISMATCH"
    assert accounts(harness) == 0


def _raw_refusal(harness: ServerHarness, request: pb.RegisterRequest) -> tuple[Any, ...]:
    """Everything a client receives for a refused Register, as bytes."""
    with grpc.insecure_channel(harness.target) as channel:
        stub = pb_grpc.IdentityServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.Register(request, timeout=10)
    error = cast(Any, caught.value)
    trailers = {k: v for k, v in error.trailing_metadata() if k == "grpc-status-details-bin"}
    return error.code(), error.details(), trailers


def test_a_wrong_portrait_and_a_wrong_name_get_byte_identical_answers(
    harness: ServerHarness, adults: list[Demographics]
) -> None:
    lan, minh = adults[:2]

    def request(**changes: Any) -> pb.RegisterRequest:
        fields: dict[str, Any] = {
            "personal_id": lan.personal_id,
            "full_name": lan.full_name,
            "birth_date": lan.birth_date.isoformat(),
            "gender": pb.GENDER_MALE if lan.gender.value == "male" else pb.GENDER_FEMALE,
            "phone_number": phone_of(lan)[0],
            "portrait": portrait_capture(lan.personal_id),
        }
        return pb.RegisterRequest(**(fields | changes))

    wrong_face = _raw_refusal(harness, request(portrait=portrait_capture(minh.personal_id)))
    wrong_name = _raw_refusal(harness, request(full_name="Someone Else Entirely"))
    both_wrong = _raw_refusal(
        harness,
        request(full_name="Someone Else", portrait=portrait_capture(minh.personal_id)),
    )
    stranger = _raw_refusal(harness, request(personal_id=lan.personal_id[:-6] + "000778"))
    assert wrong_face[0] == grpc.StatusCode.FAILED_PRECONDITION
    assert wrong_face[2]  # the rich status is there, and the same for each
    assert wrong_face == wrong_name == both_wrong == stranger
    assert accounts(harness) == 0


# ---- foreigners ------------------------------------------------------------------


def test_a_foreigner_registers_with_the_passport_signs_in_with_the_assigned_number_and_is_verified_with_nationality(  # noqa: E501
    with_foreigners: ServerHarness, citizen_app: EidClient, bank: Party
) -> None:
    harness = with_foreigners
    assigned = KIM.demographics.personal_id
    registered = register_foreigner(citizen_app, KIM)
    assert registered.personal_id == assigned
    assert registered.personal_id.startswith("900")
    assert registered.account.state == pb.ACCOUNT_STATE_PENDING

    code = harness.wait_for_code(KIM_E164)
    citizen_app.activate(personal_id=assigned, activation_code=code, new_password=PASSWORD)
    session = citizen_app.sign_in(personal_id=assigned, password=PASSWORD)
    assert session.account.state == pb.ACCOUNT_STATE_ACTIVE

    verified = bank.client.verify_password(
        personal_id=assigned, password=PASSWORD, requested_scopes=["basic"]
    )
    assert verified.verified
    assert verified.attributes.nationality == "KOR"
    assert verified.attributes.full_name == KIM.demographics.full_name
    assert not verified.attributes.personal_id  # not asked for

    shared = citizen_app.share_via_qr(
        attributes=["full_name", "nationality"],
        mode="offline",
        session_token=session.session_token,
    )
    credential = citizen_app.verify_offline(shared.token)
    assert (credential.full_name, credential.nationality) == (KIM.demographics.full_name, "KOR")

    # Stored sealed, like every personal field.
    assert all(
        b"KOR" not in bytes(row[0]) for row in harness.rows("SELECT nationality_enc FROM accounts")
    )


def test_a_citizens_nationality_is_never_released(
    harness: ServerHarness, citizen_app: EidClient, bank: Party, adult: Demographics
) -> None:
    seen = len(harness.sender.messages)
    register(citizen_app, adult)
    code = harness.wait_for_code(phone_of(adult)[1], after=seen)
    citizen_app.activate(personal_id=adult.personal_id, activation_code=code, new_password=PASSWORD)
    verified = bank.client.verify_password(personal_id=adult.personal_id, password=PASSWORD)
    assert verified.verified and verified.attributes.full_name
    assert verified.attributes.nationality == ""
    assert harness.rows("SELECT nationality_enc FROM accounts") == [(None,)]


@pytest.mark.parametrize(
    "wrong",
    [
        {"passport": {"number": "M12345679"}},
        {"passport": {"nationality": "JPN"}},
        {"passport": {"issue_date": "2019-03-05"}},
        {"passport": {"issue_place": "Busan"}},
        {"full_name": "Kim Min-seo"},
        {"birth_date": "1988-07-22"},
        {"gender": "female"},
        {"portrait": portrait_capture("900000100002")},  # another foreigner's face
    ],
    ids=lambda w: next(iter(w.get("passport", w))),
)
def test_mismatching_passport_details_are_a_registry_mismatch(
    with_foreigners: ServerHarness, citizen_app: EidClient, wrong: dict[str, Any]
) -> None:
    changes = dict(wrong)
    passport = _passport_of(KIM, **changes.pop("passport", {}))
    error = refusal(lambda: register_foreigner(citizen_app, KIM, passport, **changes))
    assert (error.code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "REGISTRY_MISMATCH")
    assert accounts(with_foreigners) == 0


def test_the_place_of_issue_is_compared_as_names_are(
    with_foreigners: ServerHarness, citizen_app: EidClient
) -> None:
    emily = demo_foreigners()[1]  # issued in "Washington, D.C."
    passport = _passport_of(emily, issue_place="  washington,   D.C. ", number="567890123 ")
    done = register_foreigner(citizen_app, emily, passport, phone_number="0912000222")
    assert done.personal_id == emily.demographics.personal_id


def test_a_foreigner_cannot_register_with_the_assigned_number_alone(
    with_foreigners: ServerHarness, citizen_app: EidClient
) -> None:
    d = KIM.demographics
    error = refusal(lambda: register(citizen_app, d))  # personal_id = the assigned number
    assert error.reason == "REGISTRY_MISMATCH"
    assert accounts(with_foreigners) == 0


def test_passport_fields_are_checked_each_with_its_reason(
    harness: ServerHarness, citizen_app: EidClient
) -> None:
    bad = Passport(number="M-1", nationality="Korea", issue_date="2019-13-01", issue_place="@@")
    error = refusal(lambda: register_foreigner(citizen_app, KIM, bad))
    assert (error.code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELDS")
    assert [f for f, _ in error.field_violations] == [
        "passport.number",
        "passport.nationality",
        "passport.issue_date",
        "passport.issue_place",
    ]
    assert error.violation_reasons == {
        "passport.number": "PASSPORT_NUMBER_INVALID",
        "passport.nationality": "NATIONALITY_INVALID",
        "passport.issue_date": "PASSPORT_ISSUE_DATE_INVALID",
        "passport.issue_place": "PASSPORT_ISSUE_PLACE_INVALID",
    }


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"passport": {"nationality": "VNM"}}, "passport.nationality", "NATIONALITY_INVALID"),
        ({"passport": {"issue_date": "1980-01-01"}}, "passport.issue_date",
         "PASSPORT_ISSUE_DATE_INVALID"),  # before the birth date
        ({"passport": {"issue_date": "2999-01-01"}}, "passport.issue_date",
         "PASSPORT_ISSUE_DATE_INVALID"),
        ({"personal_id": "001190791514"}, "passport", "PERSONAL_ID_AND_PASSPORT"),
    ],
)  # fmt: skip
def test_one_bad_passport_detail_is_named(
    harness: ServerHarness,
    citizen_app: EidClient,
    changes: dict[str, Any],
    field: str,
    reason: str,
) -> None:
    changes = dict(changes)
    passport = _passport_of(KIM, **changes.pop("passport", {}))
    error = refusal(lambda: register_foreigner(citizen_app, KIM, passport, **changes))
    assert (error.code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, reason)
    assert [f for f, _ in error.field_violations] == [field]


def test_neither_an_id_number_nor_a_passport_is_refused(
    harness: ServerHarness, citizen_app: EidClient, adult: Demographics
) -> None:
    error = refusal(lambda: register(citizen_app, adult, personal_id=""))
    assert error.reason == "PERSONAL_ID_MALFORMED"
    assert "passport" in error.message


def test_the_portrait_is_neither_stored_nor_echoed(
    harness: ServerHarness, citizen_app: EidClient, adults: list[Demographics]
) -> None:
    lan, minh = adults[:2]
    capture = portrait_capture(lan.personal_id)
    answer = register(citizen_app, lan, portrait=capture, request_id="portrait-once")
    again = register(citizen_app, lan, portrait=capture, request_id="portrait-once")
    assert again == answer  # the retry is answered from the stored response
    refused = refusal(
        lambda: register(citizen_app, minh, portrait=capture, request_id="portrait-twice")
    )
    assert capture not in answer.SerializeToString()
    assert capture.hex() not in str(refused) and capture[:16] not in str(refused).encode()
    kind = "sqlite" if harness.database_url.startswith("sqlite") else "postgresql"
    tables = [r[0] for r in harness.rows(_TABLES[kind])]
    pieces = [capture[i : i + 16] for i in range(0, len(capture), 16)]
    for table in tables:
        for row in harness.rows(f"SELECT * FROM {table}"):  # noqa: S608 (table names)
            blob = b"".join(bytes(v) for v in row if isinstance(v, bytes | memoryview))
            assert not any(piece in blob for piece in pieces), table


_TABLES = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'table'",
    "postgresql": "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
}
