"""Every request parses itself: bytes that are not a message, strings that
are not UTF-8 and durations no clock can hold get INVALID_ARGUMENT with a
reason, never UNKNOWN or INTERNAL, and nothing is written."""

from __future__ import annotations

import logging

import grpc
import pytest
from google.protobuf import duration_pb2

from eid.v1 import identity_service_pb2 as pb
from eid.v1 import identity_service_pb2_grpc as pb_grpc
from eid_client.client import EidClient
from eid_client.errors import EidError, error_from_rpc_error
from eid_service.domain.citizen import Demographics
from tests.integration.flows import PASSWORD, register_and_activate
from tests.integration.harness import ServerHarness

METHODS = ("Register", "Activate", "SignIn", "Verify", "ShareViaQR")
# 0x12 = field 2, length-delimited: a string field holding bytes that are not UTF-8.
NOT_UTF8_FIELD_2 = b"\x12\x02\xff\xfe"


def _raw_call(harness: ServerHarness, method: str, payload: bytes) -> EidError:
    with grpc.insecure_channel(harness.target) as channel:
        call = channel.unary_unary(f"/eid.v1.IdentityService/{method}", None, None)
        with pytest.raises(grpc.RpcError) as caught:
            call(payload, timeout=10)
    return error_from_rpc_error(caught.value)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("payload", [b"\xff\xff\xff", NOT_UTF8_FIELD_2], ids=["junk", "not-utf8"])
def test_undecodable_requests_are_invalid_argument(
    harness: ServerHarness, method: str, payload: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        error = _raw_call(harness, method, payload)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.reason == "REQUEST_UNDECODABLE"
    assert "Traceback" not in caplog.text
    assert harness.rows("SELECT count(*) FROM accounts") == [(0,)]


def _share_raw(harness: ServerHarness, session: str, request: pb.ShareViaQRRequest) -> EidError:
    """A ShareViaQR request the typed client would never build."""
    with grpc.insecure_channel(harness.target) as channel:
        stub = pb_grpc.IdentityServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.ShareViaQR(request, metadata=(("authorization", f"Bearer {session}"),), timeout=10)
    return error_from_rpc_error(caught.value)


def test_an_impossible_share_lifetime_is_invalid_argument(
    harness: ServerHarness, citizen_app: EidClient, adult: Demographics
) -> None:
    register_and_activate(harness, citizen_app, adult)
    session = citizen_app.sign_in(personal_id=adult.personal_id, password=PASSWORD).session_token
    for ttl in (
        duration_pb2.Duration(seconds=86_400_000_000_000),
        duration_pb2.Duration(seconds=-86_400_000_000_000),
        duration_pb2.Duration(seconds=60, nanos=-5),
        duration_pb2.Duration(seconds=60, nanos=2_000_000_000),
    ):
        request = pb.ShareViaQRRequest(attributes=[pb.ATTRIBUTE_FULL_NAME], ttl=ttl)
        error = _share_raw(harness, session, request)
        assert error.code == grpc.StatusCode.INVALID_ARGUMENT
        assert error.reason == "SHARE_TTL_OUT_OF_RANGE"
    assert harness.rows("SELECT count(*) FROM shares") == [(0,)]


def test_an_unknown_image_format_is_invalid_argument(
    harness: ServerHarness, citizen_app: EidClient, adult: Demographics
) -> None:
    register_and_activate(harness, citizen_app, adult)
    session = citizen_app.sign_in(personal_id=adult.personal_id, password=PASSWORD).session_token
    request = pb.ShareViaQRRequest(attributes=[pb.ATTRIBUTE_FULL_NAME])
    request.image_format = 99  # type: ignore[assignment]
    error = _share_raw(harness, session, request)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.reason == "IMAGE_FORMAT_UNKNOWN"


@pytest.mark.parametrize("audience", ["x" * 5000, "rp_\x00evil", "rp 1"])
def test_a_malformed_audience_is_invalid_argument(
    harness: ServerHarness, citizen_app: EidClient, adult: Demographics, audience: str
) -> None:
    register_and_activate(harness, citizen_app, adult)
    session = citizen_app.sign_in(personal_id=adult.personal_id, password=PASSWORD).session_token
    request = pb.ShareViaQRRequest(attributes=[pb.ATTRIBUTE_FULL_NAME], audience_party_id=audience)
    error = _share_raw(harness, session, request)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.reason == "PARTY_ID_INVALID"
