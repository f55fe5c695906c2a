"""The standard services around eid.v1: health, reflection, graceful stop."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2

from eid_service.app import create_server
from eid_service.limits import Limits
from eid_service.logs import loop_exception_handler
from tests.integration.harness import ServerHarness


def test_the_servers_event_loop_reports_its_errors_scrubbed(harness: ServerHarness) -> None:
    async def handler() -> object:
        return asyncio.get_running_loop().get_exception_handler()

    assert harness.run(handler()) is loop_exception_handler  # tests/unit/test_logs.py


def test_health_reports_serving(harness: ServerHarness) -> None:
    with grpc.insecure_channel(harness.target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "eid.v1.IdentityService", "eid.v1.RegistrationOfficeService"):
            response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert response.status == health_pb2.HealthCheckResponse.SERVING


REFLECTION_VERSIONS = ("grpc.reflection.v1", "grpc.reflection.v1alpha")


def _reflect(
    target: str, package: str, *requests: reflection_pb2.ServerReflectionRequest
) -> list[reflection_pb2.ServerReflectionResponse]:
    """Asks the reflection service of `package`. v1's messages are v1alpha's
    under another name: the same bytes, so v1alpha's classes speak both."""
    with grpc.insecure_channel(target) as channel:
        info = channel.stream_stream(
            f"/{package}.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        return list(info(iter(requests), timeout=5))


@pytest.mark.parametrize("package", REFLECTION_VERSIONS)
def test_reflection_lists_the_services(harness: ServerHarness, package: str) -> None:
    [listed] = _reflect(
        harness.target, package, reflection_pb2.ServerReflectionRequest(list_services="")
    )
    names = {s.name for s in listed.list_services_response.service}
    assert {
        "eid.v1.IdentityService",
        "eid.v1.RegistrationOfficeService",
        "grpc.health.v1.Health",
    } <= names
    assert {f"{v}.ServerReflection" for v in REFLECTION_VERSIONS} <= names


@pytest.mark.parametrize("package", REFLECTION_VERSIONS)
def test_reflection_describes_the_api_and_itself(harness: ServerHarness, package: str) -> None:
    ask = reflection_pb2.ServerReflectionRequest
    answers = _reflect(
        harness.target,
        package,
        ask(file_containing_symbol="eid.v1.IdentityService"),
        ask(file_containing_symbol=f"{package}.ServerReflection"),
    )
    files = [
        [
            descriptor_pb2.FileDescriptorProto.FromString(b)
            for b in a.file_descriptor_response.file_descriptor_proto
        ]
        for a in answers
    ]
    assert "Verify" in [
        m.name for f in files[0] if f.package == "eid.v1" for s in f.service for m in s.method
    ]
    [itself] = [f for f in files[1] if f.package == package]
    assert [s.name for s in itself.service] == ["ServerReflection"]
    assert itself.service[0].method[0].input_type == f".{package}.ServerReflectionRequest"


def test_unknown_method_is_unimplemented(harness: ServerHarness) -> None:
    with grpc.insecure_channel(harness.target) as channel:
        call = channel.unary_unary(
            "/eid.v1.IdentityService/Nope",
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b,
        )
        with pytest.raises(grpc.RpcError) as caught:
            call(b"", timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


HEALTH_METHODS = len(health_pb2.DESCRIPTOR.services_by_name["Health"].methods)


def test_eid_methods_wait_for_calls_with_one_pending_request(harness: ServerHarness) -> None:
    """gRPC's accept loop re-waits on all its pending requests (one task
    each) for each call that arrives; with one per method (39) that cost 5 to
    6% of a Verify's event-loop time. eid's methods are served by generic
    handlers (every eid.v1 test goes through them) through a single one;
    health keeps its own."""

    async def pending_requests() -> list[str]:
        names = (getattr(t.get_coro(), "__qualname__", "") for t in asyncio.all_tasks())
        return sorted(n for n in names if n.startswith("AioServer._request"))

    health = ["AioServer._request_registered_call"] * HEALTH_METHODS
    assert harness.run(pending_requests()) == ["AioServer._request_call", *health]


def test_a_probe_is_answered_ahead_of_queued_calls(
    start_server: Callable[[Limits], ServerHarness],
) -> None:
    """While the event loop is held up, eid calls pile up in gRPC; when it is
    free again, a health check sent after them is answered among the first,
    not after all of them (compared by order, not by time). Any database
    would do: SQLite only."""
    harness = start_server(Limits())
    burst = 90  # under one connection's stream limit, so none waits in the client
    answered: list[str] = []
    held = threading.Event()

    async def hold_the_loop() -> None:
        held.set()
        # The point: nothing else runs meanwhile (long enough for a slow client to queue).
        time.sleep(2.0)  # noqa: ASYNC251

    with (
        grpc.insecure_channel(harness.target) as calls,
        grpc.insecure_channel(harness.target) as probes,
    ):
        # No (de)serializers: the bytes go as they are (an empty request).
        keys = calls.unary_unary("/eid.v1.IdentityService/GetVerificationKeys", None, None)
        check = health_pb2_grpc.HealthStub(probes).Check
        keys(b"", timeout=5)
        check(health_pb2.HealthCheckRequest(), timeout=5)  # both connections open
        holder = threading.Thread(target=harness.run, args=(hold_the_loop(),))
        holder.start()
        assert held.wait(5)
        pending = [keys.future(b"", timeout=30) for _ in range(burst)]
        for f in pending:
            f.add_done_callback(lambda _: answered.append("call"))
        time.sleep(0.3)  # the burst reaches the server first
        probe = check.future(health_pb2.HealthCheckRequest(), timeout=30)
        probe.add_done_callback(lambda _: answered.append("probe"))
        holder.join()
        assert probe.result().status == health_pb2.HealthCheckResponse.SERVING
        for f in pending:
            f.result()
    assert len(answered) == burst + 1
    assert answered.index("probe") < burst // 3, answered.index("probe")


def test_a_port_another_process_listens_on_is_refused_not_shared(harness: ServerHarness) -> None:
    """gRPC sets SO_REUSEPORT unless told not to, and two listeners with it
    share a port: the kernel splits its connections between them, so a
    client meant for one server meets the other (UNIMPLEMENTED for every
    method it lacks). Outside `eid-server serve`'s own workers, eid's server
    is alone on its port or does not start."""
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        taken = f"127.0.0.1:{other.getsockname()[1]}"
        with pytest.raises(RuntimeError, match=taken):
            harness.run(create_server(harness.runtime, taken))
