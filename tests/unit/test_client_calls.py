"""The clients send the right requests and metadata; FakeEid is reused by the CLI tests."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import struct
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message

from eid.v1 import identity_service_pb2 as pb
from eid_client import AsyncEidClient, EidClient, Passport, _health
from eid_service.transport import ALONE_ON_PORT

Responder = Message | Callable[[Any, grpc.ServicerContext], Message]
# A captured face as the app's extractor renders it: 128 float32 values.
PORTRAIT = struct.pack("<128f", *[0.5] * 128)

_METHODS: dict[str, tuple[type[Message], type[Message]]] = {
    "Register": (pb.RegisterRequest, pb.RegisterResponse),
    "Activate": (pb.ActivateRequest, pb.ActivateResponse),
    "SignIn": (pb.SignInRequest, pb.SignInResponse),
    "Verify": (pb.VerifyRequest, pb.VerifyResponse),
    "RequestOtp": (pb.RequestOtpRequest, pb.RequestOtpResponse),
    "ListAccessHistory": (pb.ListAccessHistoryRequest, pb.ListAccessHistoryResponse),
    "ShareViaQR": (pb.ShareViaQRRequest, pb.ShareViaQRResponse),
    "ResendActivationCode": (pb.ResendActivationCodeRequest, pb.ResendActivationCodeResponse),
    "SendAccountCode": (pb.SendAccountCodeRequest, pb.SendAccountCodeResponse),
    "RefreshSession": (pb.RefreshSessionRequest, pb.RefreshSessionResponse),
    "SignOut": (pb.SignOutRequest, pb.SignOutResponse),
    "ListSessions": (pb.ListSessionsRequest, pb.ListSessionsResponse),
    "RevokeSession": (pb.RevokeSessionRequest, pb.RevokeSessionResponse),
    "LockAccount": (pb.LockAccountRequest, pb.LockAccountResponse),
    "UnlockAccount": (pb.UnlockAccountRequest, pb.UnlockAccountResponse),
    "ListShares": (pb.ListSharesRequest, pb.ListSharesResponse),
    "RevokeShare": (pb.RevokeShareRequest, pb.RevokeShareResponse),
    "GetVerificationKeys": (pb.GetVerificationKeysRequest, pb.GetVerificationKeysResponse),
    "SetStatusWebhook": (pb.SetStatusWebhookRequest, pb.SetStatusWebhookResponse),
    "GetStatusWebhook": (pb.GetStatusWebhookRequest, pb.GetStatusWebhookResponse),
    "RegisterDependant": (pb.RegisterDependantRequest, pb.RegisterDependantResponse),
    "ListDependants": (pb.ListDependantsRequest, pb.ListDependantsResponse),
    "LinkDocument": (pb.LinkDocumentRequest, pb.LinkDocumentResponse),
    "ListLinkedDocuments": (pb.ListLinkedDocumentsRequest, pb.ListLinkedDocumentsResponse),
    "UnlinkDocument": (pb.UnlinkDocumentRequest, pb.UnlinkDocumentResponse),
    "ListApprovalRequests": (pb.ListApprovalRequestsRequest, pb.ListApprovalRequestsResponse),
    "ClaimApproval": (pb.ClaimApprovalRequest, pb.ClaimApprovalResponse),
    "StartApproval": (pb.StartApprovalRequest, pb.StartApprovalResponse),
}


@dataclasses.dataclass
class Call:
    method: str
    request: Any
    metadata: dict[str, str]


class FakeEid:
    """A real in-process gRPC server answering canned responses and recording every call."""

    def __init__(self, **responses: Responder) -> None:
        self.responses: dict[str, Responder] = dict(responses)
        self.calls: list[Call] = []
        self.health_status = 1  # SERVING

    def only(self, method: str) -> Call:
        (call,) = [c for c in self.calls if c.method == method]
        return call

    def _handler(self, method: str) -> grpc.RpcMethodHandler[Any, Any]:
        request_type, response_type = _METHODS[method]

        def behaviour(request: Message, context: grpc.ServicerContext) -> Message:
            metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
            self.calls.append(Call(method, request, metadata))
            responder = self.responses.get(method)
            if responder is None:
                context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} not faked")
            return responder if isinstance(responder, Message) else responder(request, context)

        return grpc.unary_unary_rpc_method_handler(
            behaviour,
            request_deserializer=request_type.FromString,
            response_serializer=response_type.SerializeToString,
        )

    def _health(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        return bytes([0x08, self.health_status])  # HealthCheckResponse{status}

    @contextlib.contextmanager
    def serve(self, tls: grpc.ServerCredentials | None = None) -> Iterator[str]:
        """Serves on an ephemeral port of 127.0.0.1 (over TLS with ``tls``)."""
        eid = {name: self._handler(name) for name in _METHODS}
        health = {"Check": grpc.unary_unary_rpc_method_handler(self._health)}
        executor = futures.ThreadPoolExecutor(max_workers=4)
        server = grpc.server(
            executor,
            handlers=[
                grpc.method_handlers_generic_handler("eid.v1.IdentityService", eid),
                grpc.method_handlers_generic_handler("grpc.health.v1.Health", health),
            ],
            options=[ALONE_ON_PORT],
        )
        if tls is None:
            port = server.add_insecure_port("127.0.0.1:0")
        else:
            port = server.add_secure_port("127.0.0.1:0", tls)
        server.start()
        try:
            yield f"127.0.0.1:{port}"
        finally:
            server.stop(None).wait()
            executor.shutdown(wait=True)


SIGNED_IN = pb.SignInResponse(session_token="session-abc")
SHARED = pb.ShareViaQRResponse(share_id="share-1", token="tok.en")
VERIFIED = pb.VerifyResponse(verified=True, verification_id="ver-1")


def test_register_builds_the_request_and_sends_no_credentials() -> None:
    fake = FakeEid(Register=pb.RegisterResponse())
    with fake.serve() as target, EidClient(target, api_key="k", session_token="s") as client:
        client.register(
            personal_id="001190001234",
            full_name="Tran Thi Binh",
            birth_date=datetime.datetime(1990, 5, 17, 8, 30),
            gender="Female",
            phone_number="0912345678",
            portrait=PORTRAIT,
        )
        client.register(
            personal_id="001090001234",
            full_name="Nguyen Van An",
            birth_date=datetime.date(1990, 5, 17),
            gender=pb.GENDER_MALE,
            phone_number="0912345678",
            email="an@example.vn",
            portrait=PORTRAIT,
            request_id="retry-me",
        )
    first, second = (c.request for c in fake.calls)
    assert (first.birth_date, first.gender, first.email) == ("1990-05-17", pb.GENDER_FEMALE, "")
    assert len(first.request_id) == 36  # a fresh uuid4
    assert (second.gender, second.request_id, second.email) == (
        pb.GENDER_MALE,
        "retry-me",
        "an@example.vn",
    )
    assert first.portrait == PORTRAIT and not first.HasField("passport")
    for call in fake.calls:
        assert "x-api-key" not in call.metadata
        assert "authorization" not in call.metadata


def test_a_foreigner_registers_with_a_passport_and_no_id_number() -> None:
    fake = FakeEid(Register=pb.RegisterResponse(personal_id="900000100001"))
    with fake.serve() as target, EidClient(target) as client:
        answer = client.register(
            full_name="Kim Min-jun",
            birth_date="1988-07-21",
            gender="male",
            phone_number="0912000111",
            portrait=PORTRAIT,
            passport=Passport("M12345678", "KOR", datetime.date(2019, 3, 4), "Seoul"),
        )
    sent = fake.calls[0].request
    assert answer.personal_id == "900000100001"
    assert sent.personal_id == ""
    assert sent.passport == pb.Passport(
        number="M12345678", nationality="KOR", issue_date="2019-03-04", issue_place="Seoul"
    )
    assert "M12345678" not in repr(Passport("M12345678", "KOR", "2019-03-04", "Seoul"))


@pytest.mark.parametrize("gender", ["other", "GENDER_UNSPECIFIED", 0, 7])
def test_unknown_gender_is_rejected_before_calling(gender: str | int) -> None:
    fake = FakeEid()
    with (
        fake.serve() as target,
        EidClient(target) as client,
        pytest.raises(ValueError, match="gender"),
    ):
        client.register(
            personal_id="001090001234",
            full_name="Nguyen Van An",
            birth_date="1990-05-17",
            gender=gender,
            phone_number="0912345678",
            portrait=PORTRAIT,
        )
    assert fake.calls == []


def test_sign_in_keeps_the_session_for_share_via_qr() -> None:
    fake = FakeEid(SignIn=SIGNED_IN, ShareViaQR=SHARED)
    with fake.serve() as target, EidClient(target) as client:
        client.sign_in(personal_id="001090001234", password="correct horse")
        assert client.session_token == "session-abc"
        response = client.share_via_qr(
            attributes=["full_name", "ATTRIBUTE_BIRTH_DATE", pb.ATTRIBUTE_GENDER],
            audience_party_id="bank-a",
            ttl=datetime.timedelta(minutes=2),
        )
    assert response.token == "tok.en"
    share = fake.only("ShareViaQR")
    assert share.metadata["authorization"] == "Bearer session-abc"
    assert list(share.request.attributes) == [
        pb.ATTRIBUTE_FULL_NAME,
        pb.ATTRIBUTE_BIRTH_DATE,
        pb.ATTRIBUTE_GENDER,
    ]
    assert share.request.audience_party_id == "bank-a"
    assert share.request.ttl.seconds == 120
    assert share.request.request_id


def test_share_via_qr_needs_a_session() -> None:
    fake = FakeEid(ShareViaQR=SHARED)
    with fake.serve() as target, EidClient(target) as client:
        with pytest.raises(ValueError, match="sign_in"):
            client.share_via_qr(attributes=["full_name"])
        with pytest.raises(ValueError, match="unknown attribute"):
            client.share_via_qr(attributes=["blood_type"], session_token="s")
        client.share_via_qr(attributes=["full_name"], session_token="given")
    share = fake.only("ShareViaQR")
    assert share.metadata["authorization"] == "Bearer given"
    assert not share.request.HasField("ttl")  # the server default applies


def test_relying_party_calls_send_the_api_key() -> None:
    fake = FakeEid(Verify=VERIFIED)
    with fake.serve() as target, EidClient(target, api_key="rp-key") as client:
        assert client.verify_password(personal_id="001090001234", password="pw").verified
        assert client.redeem_share("tok.en").verification_id == "ver-1"
    password_call, share_call = fake.calls
    assert password_call.metadata["x-api-key"] == "rp-key"
    assert password_call.request.password.personal_id == "001090001234"
    assert share_call.metadata["x-api-key"] == "rp-key"
    assert share_call.request.qr_share.token == "tok.en"


def test_relying_party_calls_need_an_api_key() -> None:
    with EidClient("127.0.0.1:1") as client, pytest.raises(ValueError, match="api_key"):
        client.redeem_share("tok.en")


async def test_async_client_flow() -> None:
    fake = FakeEid(SignIn=SIGNED_IN, ShareViaQR=SHARED, Verify=VERIFIED)
    with fake.serve() as target:
        async with AsyncEidClient(target, api_key="rp-key") as client:
            await client.sign_in(personal_id="001090001234", password="pw")
            share = await client.share_via_qr(attributes=["full_name"])
            verdict = await client.redeem_share(share.token)
            assert await client.health() == "SERVING"
    assert verdict.verified
    assert fake.only("ShareViaQR").metadata["authorization"] == "Bearer session-abc"
    assert fake.only("Verify").metadata["x-api-key"] == "rp-key"


def test_health() -> None:
    fake = FakeEid()
    with fake.serve() as target, EidClient(target) as client:
        assert client.health() == "SERVING"
        fake.health_status = 2
        assert client.health() == "NOT_SERVING"


def test_health_wire_format() -> None:
    assert _health.encode_request() == b""
    assert _health.encode_request("eid.v1.IdentityService") == b"\x0a\x16eid.v1.IdentityService"
    assert _health.decode_status(b"") == "UNKNOWN"
    # Unknown fields (length-delimited, fixed32) are skipped.
    assert _health.decode_status(b"\x12\x02hi\x1d\x00\x00\x00\x00\x08\x03") == "SERVICE_UNKNOWN"
    with pytest.raises(ValueError, match="truncated"):
        _health.decode_status(b"\x08")
