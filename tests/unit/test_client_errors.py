"""EidError is decoded from the rich status trailer, through both clients, over a real server."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import (  # type: ignore[import-untyped, unused-ignore]
    error_details_pb2,
    status_pb2,
)
from grpc_status import rpc_status

from eid.v1 import identity_service_pb2 as pb
from eid_client import AsyncEidClient, EidClient, EidError, ErrorReason, error_from_rpc_error
from eid_client.errors import STATUS_DETAILS_KEY, status_from_trailer
from eid_client.retry import RetryPolicy
from eid_service.transport import ALONE_ON_PORT

SERVICE = "eid.v1.IdentityService"
MISMATCH_MESSAGE = "the declared data does not match the population registry"

Behaviour = Callable[[pb.RegisterRequest, grpc.ServicerContext], pb.RegisterResponse]


@contextlib.contextmanager
def serve_register(behaviour: Behaviour) -> Iterator[str]:
    """A real in-process server whose only method is Register; yields its address."""
    handler = grpc.unary_unary_rpc_method_handler(
        behaviour,
        request_deserializer=pb.RegisterRequest.FromString,
        response_serializer=pb.RegisterResponse.SerializeToString,
    )
    executor = futures.ThreadPoolExecutor(max_workers=2)
    server = grpc.server(
        executor,
        handlers=[grpc.method_handlers_generic_handler(SERVICE, {"Register": handler})],
        options=[ALONE_ON_PORT],
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None).wait()
        executor.shutdown(wait=True)


def _pack(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def reject_with_rich_status(
    request: pb.RegisterRequest, context: grpc.ServicerContext
) -> pb.RegisterResponse:
    info = error_details_pb2.ErrorInfo(
        reason="REGISTRY_MISMATCH", domain="eid.v1", metadata={"registry": "national"}
    )
    bad_request = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(
                field="full_name", description="does not match the registry"
            ),
            error_details_pb2.BadRequest.FieldViolation(
                field="birth_date", description="does not match the registry"
            ),
        ]
    )
    status = status_pb2.Status(
        code=grpc.StatusCode.FAILED_PRECONDITION.value[0],
        message=MISMATCH_MESSAGE,
        details=[_pack(info), _pack(bad_request)],
    )
    context.abort_with_status(rpc_status.to_status(status))


def reject_plainly(
    request: pb.RegisterRequest, context: grpc.ServicerContext
) -> pb.RegisterResponse:
    context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down")


REGISTRATION: dict[str, Any] = {
    "personal_id": "001090001234",
    "full_name": "Nguyen Van An",
    "birth_date": "1990-05-17",
    "gender": "male",
    "phone_number": "0912345678",
    "portrait": struct.pack("<128f", *[1.0] * 128),
}


def assert_mismatch(error: EidError) -> None:
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION
    assert error.reason == "REGISTRY_MISMATCH"
    assert error.reason_enum == ErrorReason.REGISTRY_MISMATCH
    assert error.domain == "eid.v1"
    assert error.message == MISMATCH_MESSAGE
    assert error.metadata == {"registry": "national"}
    assert error.field_violations == [
        ("full_name", "does not match the registry"),
        ("birth_date", "does not match the registry"),
    ]
    assert str(error) == f"FAILED_PRECONDITION REGISTRY_MISMATCH: {MISMATCH_MESSAGE}"
    assert isinstance(error.__cause__, grpc.RpcError)


def test_sync_client_decodes_rich_status() -> None:
    with (
        serve_register(reject_with_rich_status) as target,
        EidClient(target) as client,
        pytest.raises(EidError) as caught,
    ):
        client.register(**REGISTRATION)
    assert_mismatch(caught.value)


async def test_async_client_decodes_rich_status() -> None:
    with serve_register(reject_with_rich_status) as target:
        async with AsyncEidClient(target) as client:
            with pytest.raises(EidError) as caught:
                await client.register(**REGISTRATION)
    assert_mismatch(caught.value)


def test_sync_status_without_details_has_no_reason() -> None:
    with (
        serve_register(reject_plainly) as target,
        EidClient(target) as client,
        pytest.raises(EidError) as caught,
    ):
        client.register(**REGISTRATION)
    error = caught.value
    assert (error.code, error.reason, error.message) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        None,
        "slow down",
    )
    assert error.field_violations == []
    assert error.metadata == {}
    assert str(error) == "RESOURCE_EXHAUSTED: slow down"


async def test_async_status_without_details_has_no_reason() -> None:
    with serve_register(reject_plainly) as target:
        async with AsyncEidClient(target) as client:
            with pytest.raises(EidError) as caught:
                await client.register(**REGISTRATION)
    assert (caught.value.code, caught.value.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, None)


def test_unimplemented_method_is_an_eid_error() -> None:
    with (
        serve_register(reject_plainly) as target,
        EidClient(target) as client,
        pytest.raises(EidError) as caught,
    ):
        client.activate(personal_id="001090001234", activation_code="1", new_password="x")
    assert caught.value.code == grpc.StatusCode.UNIMPLEMENTED
    assert caught.value.reason is None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_unreachable_server_is_unavailable() -> None:
    with (
        EidClient(f"127.0.0.1:{_free_port()}", timeout=5) as client,
        pytest.raises(EidError) as caught,
    ):
        client.sign_in(personal_id="001090001234", password="whatever-123")
    assert caught.value.code in {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


def test_garbled_trailer_is_ignored() -> None:
    assert status_from_trailer([("grpc-status-details-bin", b"\xff\xff\xff")]) is None
    assert status_from_trailer([("other", "x")]) is None


def test_bare_rpc_error_is_unknown() -> None:
    error = error_from_rpc_error(grpc.RpcError())
    assert error.code == grpc.StatusCode.UNKNOWN
    assert error.reason is None
    assert str(error) == "UNKNOWN: UNKNOWN"


def reject_several_fields(
    request: pb.RegisterRequest, context: grpc.ServicerContext
) -> pb.RegisterResponse:
    violation = error_details_pb2.BadRequest.FieldViolation
    bad_request = error_details_pb2.BadRequest(
        field_violations=[
            violation(
                field="phone_number", description="not a phone", reason="PHONE_NUMBER_INVALID"
            ),
            violation(field="email", description="not an email", reason="EMAIL_INVALID"),
        ]
    )
    info = error_details_pb2.ErrorInfo(reason="INVALID_FIELDS", domain="eid.v1")
    status = status_pb2.Status(
        code=grpc.StatusCode.INVALID_ARGUMENT.value[0],
        message="2 fields are invalid",
        details=[_pack(info), _pack(bad_request)],
    )
    context.abort_with_status(rpc_status.to_status(status))


def test_each_invalid_field_has_its_own_reason() -> None:
    with (
        serve_register(reject_several_fields) as target,
        EidClient(target) as client,
        pytest.raises(EidError) as caught,
    ):
        client.register(**REGISTRATION)
    error = caught.value
    assert (error.code, error.reason_enum) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ErrorReason.INVALID_FIELDS,
    )
    assert error.field_violations == [
        ("phone_number", "not a phone"),
        ("email", "not an email"),
    ]
    assert error.violation_reasons == {
        "phone_number": "PHONE_NUMBER_INVALID",
        "email": "EMAIL_INVALID",
    }
    assert ErrorReason.Value(error.violation_reasons["email"]) == ErrorReason.EMAIL_INVALID


@pytest.mark.parametrize(
    ("reason", "domain"),
    [
        (None, None),  # not from eid: e.g. the server could not be reached
        ("REASON_FROM_A_NEWER_SERVER", "eid.v1"),
        ("REGISTRY_MISMATCH", "proxy.example.com"),  # the same word, someone else's meaning
    ],
)
def test_a_reason_the_enum_does_not_know_is_unspecified(
    reason: str | None, domain: str | None
) -> None:
    error = EidError(grpc.StatusCode.UNAVAILABLE, "x", reason=reason, domain=domain)
    assert error.reason_enum == ErrorReason.ERROR_REASON_UNSPECIFIED
    assert error.reason == reason  # the string stays, for logs and newer reasons


def reject_with_garbled_trailer(
    request: pb.RegisterRequest, context: grpc.ServicerContext
) -> pb.RegisterResponse:
    context.set_trailing_metadata((("grpc-status-details-bin", b"\xff\xff\xff"),))
    context.abort(grpc.StatusCode.FAILED_PRECONDITION, "refused")


def reject_with_absurd_retry_delay(
    request: pb.RegisterRequest, context: grpc.ServicerContext
) -> pb.RegisterResponse:
    retry = error_details_pb2.RetryInfo()
    retry.retry_delay.seconds = 2**63 - 1  # no timedelta holds it
    info = error_details_pb2.ErrorInfo(reason="PARTY_RATE_LIMITED", domain="eid.v1")
    packed = any_pb2.Any()
    packed.Pack(retry)
    status = status_pb2.Status(
        code=grpc.StatusCode.RESOURCE_EXHAUSTED.value[0],
        message="slow down",
        details=[_pack(info), packed],
    )
    context.abort_with_status(rpc_status.to_status(status))


@pytest.mark.parametrize("behaviour", [reject_with_garbled_trailer, reject_with_absurd_retry_delay])
def test_a_hostile_trailer_is_still_an_eid_error_sync_and_async(behaviour: Behaviour) -> None:
    """A proxy's garbled status details, or a RetryInfo no timedelta holds:
    the caller catching EidError gets one, with the status line's code.
    Before, the sync client let protobuf's DecodeError out, and both an
    OverflowError (found by the Node/Java pass, reading the reference)."""
    for error in _both_clients(behaviour):
        assert error.code in (
            grpc.StatusCode.FAILED_PRECONDITION,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        )
        assert error.retry_delay is None


def _reject_with_trailer(code: grpc.StatusCode, rich: status_pb2.Status) -> Behaviour:
    """Fails with ``code`` and the message "refused" on the status line, and
    ``rich`` as it is in grpc-status-details-bin (as a proxy may leave it)."""

    def behaviour(
        request: pb.RegisterRequest, context: grpc.ServicerContext
    ) -> pb.RegisterResponse:
        context.set_trailing_metadata(((STATUS_DETAILS_KEY, rich.SerializeToString()),))
        context.abort(code, "refused")

    return behaviour


def _both_clients(behaviour: Behaviour) -> list[EidError]:
    """The EidError of one Register through the sync client, then the async one."""
    with serve_register(behaviour) as target:
        with EidClient(target, retry=RetryPolicy.off()) as client, pytest.raises(EidError) as sync:
            client.register(**REGISTRATION)

        async def call() -> EidError:
            async with AsyncEidClient(target, retry=RetryPolicy.off()) as client:
                with pytest.raises(EidError) as caught:
                    await client.register(**REGISTRATION)
            return caught.value

        return [sync.value, asyncio.run(call())]


def _rich(code: grpc.StatusCode, *details: Message) -> status_pb2.Status:
    return status_pb2.Status(
        code=code.value[0], message="the trailer's message", details=[_pack(d) for d in details]
    )


def test_details_count_when_the_trailer_code_matches_whatever_its_message() -> None:
    """gRPC's rule, as grpc-java and the Node and Java SDKs apply it: the
    trailer's details belong to the failure when its code is the call's. Its
    message may differ (a proxy rewrites or truncates grpc-message): the
    status line's message is shown, the details still count. Before, the sync
    client dropped them (reason None) when the messages differed."""
    info = error_details_pb2.ErrorInfo(reason="SHARE_EXPIRED", domain="eid.v1")
    failed = grpc.StatusCode.FAILED_PRECONDITION
    for error in _both_clients(_reject_with_trailer(failed, _rich(failed, info))):
        assert (error.code, error.reason, error.message) == (failed, "SHARE_EXPIRED", "refused")
        assert str(error) == "FAILED_PRECONDITION SHARE_EXPIRED: refused"


def test_details_do_not_count_when_the_trailer_code_contradicts_the_call() -> None:
    """A trailer whose code is not the call's describes another failure (a
    proxy's, or a server's bug): only the status line counts. Before, the
    async client took the contradicting trailer's reason."""
    info = error_details_pb2.ErrorInfo(reason="SHARE_NOT_FOUND", domain="eid.v1")
    retry = error_details_pb2.RetryInfo()
    retry.retry_delay.seconds = 1
    rich = _rich(grpc.StatusCode.NOT_FOUND, info, retry)
    failed = grpc.StatusCode.UNAVAILABLE
    for error in _both_clients(_reject_with_trailer(failed, rich)):
        assert (error.code, error.reason, error.domain) == (failed, None, None)
        assert (error.message, error.retry_delay, error.metadata) == ("refused", None, {})


def test_the_first_error_info_with_a_reason_is_the_only_one_read() -> None:
    """An ErrorInfo without a reason (malformed by AIP-193: a reason is
    required) gives nothing, not even its domain or metadata; later ones (a
    proxy's, appended) do not replace eid's. The Node and Java SDKs read the
    same trailer the same way (hostile.test.ts, HostileCheck)."""
    failed = grpc.StatusCode.FAILED_PRECONDITION
    mixed = _rich(
        failed,
        error_details_pb2.ErrorInfo(domain="proxy.example", metadata={"hop": "0"}),
        error_details_pb2.ErrorInfo(reason="SHARE_EXPIRED", domain="eid.v1", metadata={"s": "1"}),
        error_details_pb2.ErrorInfo(reason="UPSTREAM", domain="proxy.example", metadata={"h": "2"}),
    )
    for error in _both_clients(_reject_with_trailer(failed, mixed)):
        assert (error.reason, error.domain, error.metadata) == (
            "SHARE_EXPIRED",
            "eid.v1",
            {"s": "1"},
        )
    bare = _rich(failed, error_details_pb2.ErrorInfo(domain="proxy.example", metadata={"hop": "0"}))
    for error in _both_clients(_reject_with_trailer(failed, bare)):
        assert (error.reason, error.domain, error.metadata) == (None, None, {})
        assert error.reason_enum == ErrorReason.ERROR_REASON_UNSPECIFIED
