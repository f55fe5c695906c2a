"""The clients' Verify modes, RequestOtp and the access history send the right
requests and metadata, sync and async; bad arguments fail before anything is sent."""

from __future__ import annotations

import datetime
import inspect
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2

from eid.v1 import identity_service_pb2 as pb
from eid_client import AsyncEidClient, EidClient
from eid_client._verify_calls import AsyncVerifyCalls, VerifyCalls
from tests.unit.test_client_calls import FakeEid

PID = "001190791514"
VERIFIED = pb.VerifyResponse(
    verified=True,
    method=pb.VERIFICATION_METHOD_ONE_TIME_CODE,
    subject="sub_" + "a" * 32,
    receipt="head.body.sig",
)
OTP_SENT = pb.RequestOtpResponse(expire_time=timestamp_pb2.Timestamp(seconds=1_900_000_000))


def paged_history(total: int, page_size_default: int = 2) -> Any:
    """ListAccessHistory over ``total`` records, page tokens being the next offset."""

    def list_history(request: pb.ListAccessHistoryRequest, context: grpc.ServicerContext) -> Any:
        size = request.page_size or page_size_default
        start = int(request.page_token or "0")
        end = min(start + size, total)
        records = [pb.AccessRecord(verification_id=f"evt_{i}") for i in range(start, end)]
        return pb.ListAccessHistoryResponse(
            records=records, next_page_token=str(end) if end < total else ""
        )

    return list_history


def test_both_verify_mixins_have_the_same_methods_and_arguments() -> None:
    def public(cls: type) -> dict[str, inspect.Signature]:
        return {
            name: inspect.signature(member)
            for name, member in vars(cls).items()
            if callable(member) and not name.startswith("_")
        }

    sync, asynchronous = public(VerifyCalls), public(AsyncVerifyCalls)
    assert sync.keys() == asynchronous.keys()
    for name, signature in sync.items():
        assert list(signature.parameters) == list(asynchronous[name].parameters), name
    assert {
        "verify_password",
        "redeem_share",
        "request_otp",
        "verify_one_time_code",
        "verify_demographic",
        "verify_biometric",
        "list_access_history",
        "iter_access_history",
    } == sync.keys()
    assert issubclass(EidClient, VerifyCalls) and issubclass(AsyncEidClient, AsyncVerifyCalls)


@pytest.mark.parametrize(
    ("scopes", "expected"),
    [
        ((), []),
        (["basic"], [pb.SCOPE_BASIC]),
        ("id_number", [pb.SCOPE_ID_NUMBER]),  # one name, not its letters
        (["SCOPE_ID_NUMBER", " Basic "], [pb.SCOPE_ID_NUMBER, pb.SCOPE_BASIC]),
        ([pb.SCOPE_BASIC, "basic", pb.SCOPE_ID_NUMBER], [pb.SCOPE_BASIC, pb.SCOPE_ID_NUMBER]),
        ("contact", [pb.SCOPE_CONTACT]),
        (["basic", "Contact", 3], [pb.SCOPE_BASIC, pb.SCOPE_CONTACT]),
    ],
)
def test_password_and_share_verification_send_the_requested_scopes(
    scopes: Any, expected: list[int]
) -> None:
    fake = FakeEid(Verify=VERIFIED)
    with fake.serve() as target, EidClient(target, api_key="rp-key") as client:
        client.verify_password(personal_id=PID, password="pw", requested_scopes=scopes)
        client.redeem_share("tok.en", "scan-1", requested_scopes=scopes)
    by_password, by_share = fake.calls
    assert list(by_password.request.requested_scopes) == expected
    assert list(by_share.request.requested_scopes) == expected
    assert by_share.request.request_id == "scan-1"  # still the second positional argument
    assert len(by_password.request.request_id) == 36
    assert {c.metadata["x-api-key"] for c in fake.calls} == {"rp-key"}


@pytest.mark.parametrize("scope", ["blood_type", "", "SCOPE_UNSPECIFIED", 0, 99])
def test_unknown_scopes_are_rejected_before_calling(scope: str | int) -> None:
    fake = FakeEid(Verify=VERIFIED)
    with fake.serve() as target, EidClient(target, api_key="rp") as client:
        with pytest.raises(ValueError, match="scope"):
            client.verify_one_time_code(PID, "123456", requested_scopes=[scope])
        with pytest.raises(ValueError, match="scope"):
            client.verify_password(personal_id=PID, password="pw", requested_scopes=[scope])
    assert fake.calls == []


def test_request_otp_sends_the_id_number_an_idempotency_key_and_the_api_key() -> None:
    fake = FakeEid(RequestOtp=OTP_SENT)
    with fake.serve() as target, EidClient(target, api_key="rp-key", session_token="s") as client:
        assert client.request_otp(PID).expire_time.seconds == 1_900_000_000
        client.request_otp(personal_id=PID, request_id="otp-1")
    auto, given = fake.calls
    assert (auto.request.personal_id, len(auto.request.request_id)) == (PID, 36)
    assert given.request.request_id == "otp-1"
    assert auto.metadata["x-api-key"] == "rp-key"
    assert "authorization" not in auto.metadata


def test_relying_party_modes_need_an_api_key() -> None:
    with EidClient("127.0.0.1:1", session_token="s") as client:
        for call in (
            lambda: client.request_otp(PID),
            lambda: client.verify_one_time_code(PID, "123456"),
            lambda: client.verify_demographic(PID, birth_date="1990"),
        ):
            with pytest.raises(ValueError, match="api_key"):
                call()


def test_verify_one_time_code() -> None:
    fake = FakeEid(Verify=VERIFIED)
    with fake.serve() as target, EidClient(target, api_key="rp") as client:
        answer = client.verify_one_time_code(PID, "123456", requested_scopes=["basic"])
        client.verify_one_time_code(personal_id=PID, code="654321", request_id="v-1")
        with pytest.raises(ValueError, match="code="):
            client.verify_one_time_code(PID, "")
    assert (answer.subject, answer.receipt) == (VERIFIED.subject, "head.body.sig")
    first, second = fake.calls
    assert first.request.WhichOneof("credential") == "one_time_code"
    assert (first.request.one_time_code.personal_id, first.request.one_time_code.code) == (
        PID,
        "123456",
    )
    assert list(first.request.requested_scopes) == [pb.SCOPE_BASIC]
    assert len(first.request.request_id) == 36
    assert (second.request.one_time_code.code, second.request.request_id) == ("654321", "v-1")
    assert list(second.request.requested_scopes) == []


def test_verify_demographic_claims_only_what_is_given() -> None:
    fake = FakeEid(Verify=pb.VerifyResponse(method=pb.VERIFICATION_METHOD_DEMOGRAPHIC))
    with fake.serve() as target, EidClient(target, api_key="rp") as client:
        client.verify_demographic(
            PID,
            full_name="Nguyễn Thị Lan",
            birth_date=datetime.datetime(1990, 5, 17, 8, 0),
            gender="Female",
        )
        client.verify_demographic(
            PID, full_name="nguyen lan", partial=True, threshold=85, request_id="d-1"
        )
        client.verify_demographic(PID, birth_date="1990", gender=pb.GENDER_MALE)
    full, partial, year = (c.request.demographic for c in fake.calls)
    assert (full.full_name, full.birth_date, full.gender) == (
        "Nguyễn Thị Lan",
        "1990-05-17",
        pb.GENDER_FEMALE,
    )
    assert (full.name_match, full.name_threshold) == (pb.NAME_MATCH_STRATEGY_EXACT, 0)
    assert (partial.name_match, partial.name_threshold) == (pb.NAME_MATCH_STRATEGY_PARTIAL, 85)
    assert (partial.birth_date, partial.gender) == ("", pb.GENDER_UNSPECIFIED)
    assert (year.full_name, year.birth_date, year.gender) == ("", "1990", pb.GENDER_MALE)
    assert fake.calls[1].request.request_id == "d-1"
    assert all(len(c.request.request_id) == 36 for c in (fake.calls[0], fake.calls[2]))
    assert all(not c.request.requested_scopes for c in fake.calls)  # nothing is released


@pytest.mark.parametrize(
    ("claim", "problem"),
    [
        ({}, "at least one"),
        ({"full_name": ""}, "at least one"),
        ({"full_name": "An", "threshold": 90}, "partial=True"),
        ({"full_name": "An", "partial": True, "threshold": 79}, "from 80 to 100"),
        ({"full_name": "An", "partial": True, "threshold": 101}, "from 80 to 100"),
        ({"birth_date": "1990", "partial": True, "threshold": 80}, "full_name="),
        ({"gender": "other"}, "gender"),
    ],
)
def test_impossible_demographic_claims_are_rejected_before_calling(
    claim: dict[str, Any], problem: str
) -> None:
    fake = FakeEid(Verify=VERIFIED)
    with (
        fake.serve() as target,
        EidClient(target, api_key="rp") as client,
        pytest.raises(ValueError, match=problem),
    ):
        client.verify_demographic(PID, **claim)
    assert fake.calls == []


def test_list_access_history_sends_the_page_and_the_session() -> None:
    fake = FakeEid(ListAccessHistory=paged_history(5))
    with fake.serve() as target, EidClient(target, api_key="rp", session_token="access-9") as c:
        page = c.list_access_history(page_size=3, page_token="1")
        with pytest.raises(ValueError, match="page_size"):
            c.list_access_history(page_size=-1)
    assert [r.verification_id for r in page.records] == ["evt_1", "evt_2", "evt_3"]
    assert page.next_page_token == "4"
    call = fake.only("ListAccessHistory")
    assert (call.request.page_size, call.request.page_token) == (3, "1")
    assert call.metadata["authorization"] == "Bearer access-9"
    assert "x-api-key" not in call.metadata


def test_iter_access_history_follows_next_page_token() -> None:
    fake = FakeEid(ListAccessHistory=paged_history(5))
    with fake.serve() as target, EidClient(target, session_token="access-9") as client:
        ids = [r.verification_id for r in client.iter_access_history()]
        by_3 = [r.verification_id for r in client.iter_access_history(3, session_token="t")]
    assert ids == by_3 == [f"evt_{i}" for i in range(5)]
    assert [c.request.page_token for c in fake.calls] == ["", "2", "4", "", "3"]
    assert [c.metadata["authorization"] for c in fake.calls] == ["Bearer access-9"] * 3 + [
        "Bearer t"
    ] * 2


def test_the_access_history_needs_a_session_at_once() -> None:
    with EidClient("127.0.0.1:1", api_key="rp") as client:
        with pytest.raises(ValueError, match="sign_in"):
            client.iter_access_history()
        with pytest.raises(ValueError, match="sign_in"):
            client.list_access_history()


async def test_async_verify_modes_and_history() -> None:
    fake = FakeEid(RequestOtp=OTP_SENT, Verify=VERIFIED, ListAccessHistory=paged_history(3))
    with fake.serve() as target:
        async with AsyncEidClient(target, api_key="rp-key", session_token="access-1") as client:
            sent = await client.request_otp(PID, request_id="otp-1")
            by_code = await client.verify_one_time_code(PID, "123456", requested_scopes="basic")
            await client.verify_demographic(PID, full_name="An", partial=True, threshold=90)
            await client.verify_password(
                personal_id=PID, password="pw", requested_scopes=["id_number"]
            )
            await client.redeem_share("tok.en", requested_scopes=[pb.SCOPE_BASIC])
            ids = [r.verification_id async for r in client.iter_access_history()]
            page = await client.list_access_history(page_size=1)
        async with AsyncEidClient(target) as anonymous:
            with pytest.raises(ValueError, match="sign_in"):
                anonymous.iter_access_history()  # fails at once, not at the first __anext__()
    assert sent.expire_time.seconds == 1_900_000_000 and by_code.receipt == "head.body.sig"
    assert ids == ["evt_0", "evt_1", "evt_2"] and page.next_page_token == "1"
    assert fake.only("RequestOtp").request.request_id == "otp-1"
    code, claim, password, share = (c.request for c in fake.calls if c.method == "Verify")
    assert list(code.requested_scopes) == [pb.SCOPE_BASIC]
    assert (claim.demographic.name_match, claim.demographic.name_threshold) == (
        pb.NAME_MATCH_STRATEGY_PARTIAL,
        90,
    )
    assert list(password.requested_scopes) == [pb.SCOPE_ID_NUMBER]
    assert list(share.requested_scopes) == [pb.SCOPE_BASIC]
    verify_keys = {c.metadata["x-api-key"] for c in fake.calls if c.method == "Verify"}
    assert verify_keys == {"rp-key"}
    assert fake.calls[-1].metadata["authorization"] == "Bearer access-1"
