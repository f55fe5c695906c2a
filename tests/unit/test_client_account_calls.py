"""The account's life through both clients: codes, refresh, sessions, lock, unlock.

Every method sends the right request and metadata, and the client keeps (and
forgets) the session's tokens as documented.
"""

from __future__ import annotations

import inspect
from typing import Any

import grpc
import pytest

from eid.v1 import identity_service_pb2 as pb
from eid_client import AsyncEidClient, EidClient
from eid_client.client import AsyncEidClient as AsyncFromClientModule
from tests.unit.test_client_calls import FakeEid

PID = "001090001234"

SIGNED_IN = pb.SignInResponse(
    session_token="access-1", refresh_token="refresh-1", session_id="sess-1"
)
DELIVERY = pb.ActivationDelivery(
    channel=pb.DELIVERY_CHANNEL_SMS, masked_destination="+84 *** *** 678"
)
LOCKED = pb.LockAccountResponse(
    account=pb.Account(account_id="acc-1", state=pb.ACCOUNT_STATE_LOCKED), newly_locked=True
)
UNLOCKED = pb.UnlockAccountResponse(
    account=pb.Account(account_id="acc-1", state=pb.ACCOUNT_STATE_ACTIVE)
)


def refresh_counter() -> Any:
    """RefreshSession answering access-N+1/refresh-N+1 for refresh-N."""

    def refresh(request: pb.RefreshSessionRequest, context: grpc.ServicerContext) -> Any:
        n = int(request.refresh_token.rsplit("-", 1)[1]) + 1
        return pb.RefreshSessionResponse(
            session_token=f"access-{n}", refresh_token=f"refresh-{n}", session_id="sess-1"
        )

    return refresh


def paged(total: int, page_size_default: int = 2) -> Any:
    """ListSessions over ``total`` sessions, page tokens being the next offset."""

    def list_sessions(request: pb.ListSessionsRequest, context: grpc.ServicerContext) -> Any:
        size = request.page_size or page_size_default
        start = int(request.page_token or "0")
        end = min(start + size, total)
        sessions = [
            pb.Session(session_id=f"s{i}", device_name=f"device {i}", current=i == 0)
            for i in range(start, end)
        ]
        return pb.ListSessionsResponse(
            sessions=sessions, next_page_token=str(end) if end < total else ""
        )

    return list_sessions


def kept(client: EidClient | AsyncEidClient) -> tuple[str | None, str | None, str | None]:
    """The tokens a client keeps (a call, so that type checkers do not narrow them)."""
    return client.session_token, client.refresh_token, client.session_id


def no_credentials(metadata: dict[str, str]) -> bool:
    return not {"authorization", "x-api-key", "x-officer-key"} & metadata.keys()


def test_both_clients_have_the_same_methods_and_arguments() -> None:
    assert AsyncFromClientModule is AsyncEidClient

    def public(cls: type) -> dict[str, inspect.Signature]:
        return {
            name: inspect.signature(member)
            for name, member in vars(cls).items()
            if callable(member) and not name.startswith("_")
        }

    sync, asynchronous = public(EidClient), public(AsyncEidClient)
    assert sync.keys() == asynchronous.keys()
    for name, signature in sync.items():
        assert list(signature.parameters) == list(asynchronous[name].parameters), name
    assert {"refresh_session", "iter_sessions", "unlock_account_by_officer"} <= sync.keys()


def test_resend_activation_code_by_phone_or_email() -> None:
    fake = FakeEid(ResendActivationCode=pb.ResendActivationCodeResponse(delivery=DELIVERY))
    with fake.serve() as target, EidClient(target, api_key="k", session_token="s") as client:
        response = client.resend_activation_code(personal_id=PID, phone_number="0912345678")
        client.resend_activation_code(personal_id=PID, email="an@example.vn", request_id="r-1")
        with pytest.raises(ValueError, match="phone_number= or email="):
            client.resend_activation_code(personal_id=PID)
    assert response.delivery.masked_destination == "+84 *** *** 678"
    first, second = fake.calls
    assert (first.request.personal_id, first.request.phone_number, first.request.email) == (
        PID,
        "0912345678",
        "",
    )
    assert len(first.request.request_id) == 36  # a fresh uuid4
    assert (second.request.email, second.request.request_id) == ("an@example.vn", "r-1")
    assert all(no_credentials(c.metadata) for c in fake.calls)


@pytest.mark.parametrize(
    ("purpose", "expected"),
    [
        ("lock", pb.ACCOUNT_CODE_PURPOSE_LOCK),
        ("UNLOCK", pb.ACCOUNT_CODE_PURPOSE_UNLOCK),
        ("ACCOUNT_CODE_PURPOSE_LOCK", pb.ACCOUNT_CODE_PURPOSE_LOCK),
        (pb.ACCOUNT_CODE_PURPOSE_UNLOCK, pb.ACCOUNT_CODE_PURPOSE_UNLOCK),
    ],
)
def test_send_account_code_purposes(purpose: str | int, expected: int) -> None:
    fake = FakeEid(SendAccountCode=pb.SendAccountCodeResponse(delivery=DELIVERY))
    with fake.serve() as target, EidClient(target) as client:
        client.send_account_code(purpose=purpose, personal_id=PID, email="an@example.vn")
    call = fake.only("SendAccountCode")
    assert (call.request.purpose, call.request.personal_id, call.request.email) == (
        expected,
        PID,
        "an@example.vn",
    )
    assert call.request.request_id
    assert no_credentials(call.metadata)


@pytest.mark.parametrize("purpose", ["activation", "", 0, 9])
def test_unknown_code_purpose_is_rejected_before_calling(purpose: str | int) -> None:
    fake = FakeEid()
    with (
        fake.serve() as target,
        EidClient(target) as client,
        pytest.raises(ValueError, match="purpose"),
    ):
        client.send_account_code(purpose=purpose, personal_id=PID, phone_number="0912345678")
    assert fake.calls == []


def test_sign_in_keeps_both_tokens_and_refresh_rotates_them() -> None:
    fake = FakeEid(SignIn=SIGNED_IN, RefreshSession=refresh_counter())
    with fake.serve() as target, EidClient(target) as client:
        client.sign_in(personal_id=PID, password="pw", device_name="Pixel 8")
        assert (client.session_token, client.refresh_token, client.session_id) == (
            "access-1",
            "refresh-1",
            "sess-1",
        )
        client.refresh_session()
        assert (client.session_token, client.refresh_token) == ("access-2", "refresh-2")
        client.refresh_session(request_id="retry-me")
        assert (client.session_token, client.refresh_token) == ("access-3", "refresh-3")
        client.refresh_session("refresh-10")  # a token given explicitly wins
        assert client.refresh_token == "refresh-11"
    assert fake.only("SignIn").request.device_name == "Pixel 8"
    refreshes = [c for c in fake.calls if c.method == "RefreshSession"]
    assert [c.request.refresh_token for c in refreshes] == ["refresh-1", "refresh-2", "refresh-10"]
    assert refreshes[1].request.request_id == "retry-me"
    assert len(refreshes[0].request.request_id) == 36
    # The refresh token travels in the request, never with an access token.
    assert all(no_credentials(c.metadata) for c in refreshes)


def test_refresh_needs_a_refresh_token() -> None:
    fake = FakeEid(RefreshSession=refresh_counter())
    with fake.serve() as target:
        with EidClient(target) as client, pytest.raises(ValueError, match="refresh token"):
            client.refresh_session()
        with EidClient(target, refresh_token="refresh-5") as client:
            client.refresh_session()
            assert client.session_token == "access-6"
    assert fake.only("RefreshSession").request.refresh_token == "refresh-5"


def test_sign_out_sends_the_session_and_forgets_the_tokens() -> None:
    fake = FakeEid(SignIn=SIGNED_IN, SignOut=pb.SignOutResponse())
    with fake.serve() as target, EidClient(target) as client:
        client.sign_in(personal_id=PID, password="pw")
        client.sign_out(session_token="another-device")  # not the kept session
        assert kept(client) == ("access-1", "refresh-1", "sess-1")
        client.sign_out(request_id="bye-1")
        assert kept(client) == (None, None, None)
        with pytest.raises(ValueError, match="sign_in"):
            client.sign_out()
    other, own = (c for c in fake.calls if c.method == "SignOut")
    assert other.metadata["authorization"] == "Bearer another-device"
    assert own.metadata["authorization"] == "Bearer access-1"
    assert own.request.request_id == "bye-1"
    assert len(other.request.request_id) == 36


def test_list_sessions_sends_the_page_and_the_session() -> None:
    fake = FakeEid(ListSessions=paged(5))
    with fake.serve() as target, EidClient(target, session_token="access-9") as client:
        page = client.list_sessions(page_size=3, page_token="1")
        with pytest.raises(ValueError, match="page_size"):
            client.list_sessions(page_size=-1)
    assert [s.session_id for s in page.sessions] == ["s1", "s2", "s3"]
    assert page.next_page_token == "4"
    call = fake.only("ListSessions")
    assert (call.request.page_size, call.request.page_token) == (3, "1")
    assert call.metadata["authorization"] == "Bearer access-9"


def test_iter_sessions_follows_next_page_token() -> None:
    fake = FakeEid(ListSessions=paged(5))
    with fake.serve() as target, EidClient(target, session_token="access-9") as client:
        ids = [s.session_id for s in client.iter_sessions()]
        ids_by_3 = [s.session_id for s in client.iter_sessions(page_size=3, session_token="t")]
    assert ids == ids_by_3 == ["s0", "s1", "s2", "s3", "s4"]
    calls = fake.calls
    assert [c.request.page_token for c in calls] == ["", "2", "4", "", "3"]
    assert [c.metadata["authorization"] for c in calls] == ["Bearer access-9"] * 3 + [
        "Bearer t"
    ] * 2


def test_iter_sessions_without_a_session_fails_at_once() -> None:
    with EidClient("127.0.0.1:1") as client, pytest.raises(ValueError, match="sign_in"):
        client.iter_sessions()


def test_revoke_session() -> None:
    fake = FakeEid(SignIn=SIGNED_IN, RevokeSession=pb.RevokeSessionResponse())
    with fake.serve() as target, EidClient(target) as client:
        client.sign_in(personal_id=PID, password="pw")
        client.revoke_session("sess-other", request_id="rv-1")
        assert kept(client)[0] == "access-1"  # another device's session
        client.revoke_session("sess-1")  # this client's own session
        assert kept(client) == (None, None, None)
        with pytest.raises(ValueError, match="session_id"):
            client.revoke_session("", session_token="t")
    first, own = (c for c in fake.calls if c.method == "RevokeSession")
    assert (first.request.session_id, first.request.request_id) == ("sess-other", "rv-1")
    assert first.metadata["authorization"] == "Bearer access-1"
    assert own.request.session_id == "sess-1"


def test_lock_with_the_session_forgets_it() -> None:
    fake = FakeEid(SignIn=SIGNED_IN, LockAccount=LOCKED)
    with fake.serve() as target, EidClient(target) as client:
        client.sign_in(personal_id=PID, password="pw")
        response = client.lock_account(request_id="lock-1")
        assert client.session_token is None and client.refresh_token is None
    assert response.newly_locked
    call = fake.only("LockAccount")
    assert call.request.WhichOneof("proof") is None
    assert call.request.request_id == "lock-1"
    assert call.metadata["authorization"] == "Bearer access-1"


def test_lock_with_password_or_code_sends_no_session() -> None:
    fake = FakeEid(LockAccount=LOCKED)
    with fake.serve() as target, EidClient(target, session_token="kept") as client:
        client.lock_account(personal_id=PID, password="pw")
        client.lock_account(personal_id=PID, one_time_code="123456")
        assert client.session_token == "kept"  # perhaps another citizen's: not ours to drop
    by_password, by_code = fake.calls
    assert by_password.request.password == pb.LockWithPassword(personal_id=PID, password="pw")
    assert by_code.request.one_time_code == pb.LockWithCode(personal_id=PID, one_time_code="123456")
    assert by_password.request.request_id != by_code.request.request_id
    assert no_credentials(by_password.metadata) and no_credentials(by_code.metadata)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"personal_id": PID, "password": "pw", "one_time_code": "1"}, "not both"),
        ({"password": "pw"}, "needs personal_id"),
        ({"one_time_code": "123456"}, "needs personal_id"),
        ({"personal_id": PID}, "goes with password= or one_time_code="),
        ({}, "sign_in"),  # the session, but there is none
    ],
)
def test_lock_rejects_ambiguous_proofs(arguments: dict[str, str], message: str) -> None:
    fake = FakeEid(LockAccount=LOCKED)
    with (
        fake.serve() as target,
        EidClient(target) as client,
        pytest.raises(ValueError, match=message),
    ):
        client.lock_account(**arguments)
    assert fake.calls == []


def test_unlock_by_officer_sends_the_officer_key() -> None:
    fake = FakeEid(UnlockAccount=UNLOCKED)
    with fake.serve() as target:
        with EidClient(target, officer_key="officer-1", session_token="s") as client:
            response = client.unlock_account_by_officer(personal_id=PID, request_id="u-1")
            client.unlock_account_by_officer(personal_id=PID, officer_key="officer-2")
        with EidClient(target) as client, pytest.raises(ValueError, match="officer_key"):
            client.unlock_account_by_officer(personal_id=PID)
    assert response.account.state == pb.ACCOUNT_STATE_ACTIVE
    first = fake.calls[0]
    assert first.request.officer == pb.UnlockByOfficer(personal_id=PID)
    assert first.request.request_id == "u-1"
    assert [c.metadata["x-officer-key"] for c in fake.calls] == ["officer-1", "officer-2"]
    assert "authorization" not in first.metadata


def test_unlock_by_citizen_sends_code_and_password_without_credentials() -> None:
    fake = FakeEid(UnlockAccount=UNLOCKED)
    with fake.serve() as target, EidClient(target, officer_key="officer-1") as client:
        client.unlock_account(personal_id=PID, one_time_code="654321", password="pw")
    call = fake.only("UnlockAccount")
    assert call.request.citizen == pb.UnlockByCitizen(
        personal_id=PID, one_time_code="654321", password="pw"
    )
    assert call.request.request_id
    assert no_credentials(call.metadata)


async def test_async_client_account_life() -> None:
    fake = FakeEid(
        SignIn=SIGNED_IN,
        RefreshSession=refresh_counter(),
        ListSessions=paged(3),
        RevokeSession=pb.RevokeSessionResponse(),
        SendAccountCode=pb.SendAccountCodeResponse(delivery=DELIVERY),
        ResendActivationCode=pb.ResendActivationCodeResponse(delivery=DELIVERY),
        LockAccount=LOCKED,
        UnlockAccount=UNLOCKED,
        SignOut=pb.SignOutResponse(),
    )
    with fake.serve() as target:
        async with AsyncEidClient(target, officer_key="officer-1") as client:
            await client.resend_activation_code(personal_id=PID, phone_number="0912345678")
            await client.sign_in(personal_id=PID, password="pw", device_name="iPad")
            await client.refresh_session()
            assert (client.session_token, client.refresh_token) == ("access-2", "refresh-2")
            page = await client.list_sessions(page_size=1)
            ids = [s.session_id async for s in client.iter_sessions()]
            await client.revoke_session("s2")
            await client.sign_out()
            assert client.session_token is None and client.refresh_token is None
            await client.send_account_code(purpose="lock", personal_id=PID, email="a@b.vn")
            await client.lock_account(personal_id=PID, one_time_code="123456")
            await client.unlock_account_by_officer(personal_id=PID)
            await client.unlock_account(personal_id=PID, one_time_code="1", password="pw")
            with pytest.raises(ValueError, match="sign_in"):
                client.iter_sessions()
    assert [s.session_id for s in page.sessions] == ["s0"]
    assert ids == ["s0", "s1", "s2"]
    assert fake.only("SignIn").request.device_name == "iPad"
    assert fake.only("RefreshSession").request.refresh_token == "refresh-1"
    assert fake.only("RevokeSession").metadata["authorization"] == "Bearer access-2"
    assert fake.only("SignOut").metadata["authorization"] == "Bearer access-2"
    assert fake.only("SendAccountCode").request.purpose == pb.ACCOUNT_CODE_PURPOSE_LOCK
    assert fake.only("LockAccount").request.one_time_code.one_time_code == "123456"
    officer, citizen = (c for c in fake.calls if c.method == "UnlockAccount")
    assert officer.metadata["x-officer-key"] == "officer-1"
    assert citizen.request.WhichOneof("unlock") == "citizen"
    assert no_credentials(citizen.metadata)


async def test_async_lock_with_the_session_forgets_it() -> None:
    fake = FakeEid(LockAccount=LOCKED)
    with fake.serve() as target:
        async with AsyncEidClient(target, session_token="a", refresh_token="r") as client:
            await client.lock_account()
            assert client.session_token is None and client.refresh_token is None
    assert fake.only("LockAccount").metadata["authorization"] == "Bearer a"
