"""The interceptor's telemetry, on a real gRPC server in this process with the
SDK's in-memory exporters: one SERVER span per call in the caller's trace,
its status code, reason and party, child spans, metrics; exception messages
never reach a span; off, no span and no call record at all."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import pytest
from google.protobuf import empty_pb2
from grpc import aio
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from eid.v1 import identity_service_pb2 as pb
from eid_service.api import access_log
from eid_service.api.access_log import NOT_SHOWN
from eid_service.api.interceptors import ErrorMappingInterceptor
from eid_service.domain.errors import PermissionDenied
from eid_service.telemetry import calls, spans
from eid_service.telemetry.rpc import RpcObserver
from eid_service.transport import ALONE_ON_PORT

T = TypeVar("T")

SERVICE = "test.v1.Probe"
SECRET = "079123456789"  # stands for an ID number an exception message might quote
REQUEST_ID = "0d9f6b1e-8c2a-4f57-9d3e-5b7a1c2e4f60"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE}-00f067aa0ba902b7-01"


async def ok(request: pb.RegisterRequest, context: Any) -> empty_pb2.Empty:
    calls.note_party("rp_0123456789abcdef")
    with spans.span("eid.sign.receipt"):
        await asyncio.sleep(0)
    return empty_pb2.Empty()


async def refused(request: pb.RegisterRequest, context: Any) -> empty_pb2.Empty:
    calls.note_party("rp_0123456789abcdef")
    raise PermissionDenied(reason="PARTY_SUSPENDED", message="suspended")


async def broken(request: pb.RegisterRequest, context: Any) -> empty_pb2.Empty:
    with spans.span("eid.db.write"):
        raise ValueError(f"no citizen {SECRET}")


async def slow(request: pb.RegisterRequest, context: Any) -> empty_pb2.Empty:
    await asyncio.sleep(30)
    return empty_pb2.Empty()


BEHAVIOURS: dict[str, Callable[[pb.RegisterRequest, Any], Awaitable[empty_pb2.Empty]]] = {
    "Ok": ok,
    "Refused": refused,
    "Broken": broken,
    "Slow": slow,
}


@dataclass
class Probe:
    channel: aio.Channel
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader | None

    async def call(
        self, name: str, *, deadline: float = 5, traceparent: str = ""
    ) -> grpc.StatusCode:
        method = self.channel.unary_unary(
            f"/{SERVICE}/{name}",
            request_serializer=pb.RegisterRequest.SerializeToString,
            response_deserializer=empty_pb2.Empty.FromString,
        )
        metadata = (("traceparent", traceparent),) if traceparent else None
        request = pb.RegisterRequest(request_id=REQUEST_ID, personal_id=SECRET)
        try:
            await method(request, timeout=deadline, metadata=metadata)
        except aio.AioRpcError as error:
            return error.code()
        return grpc.StatusCode.OK

    def finished(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans.get_finished_spans() if s.name == name]

    async def ended(self, name: str) -> list[ReadableSpan]:
        """`finished(name)` once there is one: a refused, failed or abandoned
        call's status can reach the client before the server ends its span."""
        return await _eventually(lambda: self.finished(name), bool)


async def _eventually(read: Callable[[], T], done: Callable[[T], bool]) -> T:
    """`read()` once `done` with it, or after 2 s: what the server records on
    its way out of a call can come after the client has its answer."""
    for _ in range(100):
        value = read()
        if done(value):
            return value
        await asyncio.sleep(0.02)
    return read()


async def _serve(observer: RpcObserver | None) -> tuple[aio.Server, int]:
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            fn,
            request_deserializer=pb.RegisterRequest.FromString,
            response_serializer=empty_pb2.Empty.SerializeToString,
        )
        for name, fn in BEHAVIOURS.items()
    }
    server = aio.server(
        interceptors=[ErrorMappingInterceptor(observer=observer)], options=[ALONE_ON_PORT]
    )
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, handlers)])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


@pytest.fixture
async def traced() -> AsyncIterator[Probe]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    tracer = tracer_provider.get_tracer("test")
    spans.install(tracer)
    server, port = await _serve(RpcObserver(tracer, meter_provider.get_meter("test")))
    try:
        async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield Probe(channel, exporter, reader)
    finally:
        spans.install(None)
        await server.stop(None)
        tracer_provider.shutdown()
        meter_provider.shutdown()


async def test_a_call_is_a_server_span_in_the_callers_trace(traced: Probe) -> None:
    assert await traced.call("Ok", traceparent=TRACEPARENT) == grpc.StatusCode.OK
    [rpc] = traced.finished(f"{SERVICE}/Ok")
    assert rpc.kind is SpanKind.SERVER
    assert rpc.context is not None and rpc.parent is not None
    assert f"{rpc.context.trace_id:032x}" == TRACE
    assert f"{rpc.parent.span_id:016x}" == "00f067aa0ba902b7"
    assert rpc.attributes is not None
    assert dict(rpc.attributes) == {
        "rpc.system": "grpc",
        "rpc.service": SERVICE,
        "rpc.method": "Ok",
        "rpc.grpc.status_code": 0,
        "eid.party_id": "rp_0123456789abcdef",
    }
    assert rpc.status.status_code is StatusCode.UNSET
    [child] = traced.finished("eid.sign.receipt")
    assert child.parent is not None and child.parent.span_id == rpc.context.span_id


async def test_without_traceparent_a_call_starts_its_own_trace(traced: Probe) -> None:
    await traced.call("Ok")
    await traced.call("Ok", traceparent="00-" + "0" * 32 + "-00f067aa0ba902b7-01")  # invalid
    first, second = traced.finished(f"{SERVICE}/Ok")
    assert first.parent is None and second.parent is None
    assert first.context is not None and second.context is not None
    assert first.context.trace_id != second.context.trace_id


async def test_a_refusal_carries_its_reason_but_is_not_a_server_error(traced: Probe) -> None:
    assert await traced.call("Refused") == grpc.StatusCode.PERMISSION_DENIED
    [rpc] = await traced.ended(f"{SERVICE}/Refused")
    assert rpc.attributes is not None
    assert rpc.attributes["rpc.grpc.status_code"] == grpc.StatusCode.PERMISSION_DENIED.value[0]
    assert rpc.attributes["error.type"] == "PARTY_SUSPENDED"
    assert rpc.status.status_code is StatusCode.UNSET


async def test_a_defect_is_an_error_span_without_the_exception_message(traced: Probe) -> None:
    assert await traced.call("Broken") == grpc.StatusCode.INTERNAL
    [rpc] = await traced.ended(f"{SERVICE}/Broken")
    assert rpc.status.status_code is StatusCode.ERROR
    assert rpc.attributes is not None and rpc.attributes["error.type"] == "INTERNAL"
    [db] = traced.finished("eid.db.write")
    assert db.status.status_code is StatusCode.ERROR
    assert db.attributes is not None and db.attributes["error.type"] == "ValueError"
    for span in traced.spans.get_finished_spans():
        assert SECRET not in span.to_json()
        assert not span.events  # no exception event: its message would quote data


async def test_a_call_the_client_gives_up_on_is_cancelled(traced: Probe) -> None:
    assert await traced.call("Slow", deadline=0.2) == grpc.StatusCode.DEADLINE_EXCEEDED
    [rpc] = await traced.ended(f"{SERVICE}/Slow")  # the server learns of it a moment later
    assert rpc.attributes is not None
    assert rpc.attributes["rpc.grpc.status_code"] == grpc.StatusCode.CANCELLED.value[0]


def _metric_points(traced: Probe) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    """Each metric's data points so far, with their attributes."""
    assert traced.metrics is not None
    data = traced.metrics.get_metrics_data()
    points: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    for resource in data.resource_metrics if data is not None else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    points.setdefault(metric.name, []).append((dict(point.attributes or {}), point))
    return points


async def test_metrics_count_calls_and_failures_by_rpc_party_and_reason(traced: Probe) -> None:
    await traced.call("Ok")
    await traced.call("Ok")
    await traced.call("Refused")
    # A refusal's status reaches the client as the server aborts; the server
    # counts the call on its way out of the handler.
    points = await _eventually(
        lambda: _metric_points(traced),
        lambda p: len(p.get("eid.rpc.server.requests", [])) >= 2 and "eid.rpc.server.failures" in p,
    )
    requests = {
        (a["rpc.method"], a["rpc.grpc.status_code"]): p.value
        for a, p in points["eid.rpc.server.requests"]
    }
    assert requests == {("Ok", 0): 2, ("Refused", 7): 1}
    [(failure, counted)] = points["eid.rpc.server.failures"]
    assert failure["error.type"] == "PARTY_SUSPENDED"
    assert failure["eid.party_id"] == "rp_0123456789abcdef"
    assert counted.value == 1
    durations = {a["rpc.method"]: p.count for a, p in points["rpc.server.call.duration"]}
    assert durations == {"Ok": 2, "Refused": 1}


async def test_off_no_span_and_no_call_record_is_made(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    made: list[calls.Call] = []
    real_begin = calls.begin

    def counting() -> calls.Call:
        made.append(real_begin())
        return made[-1]

    monkeypatch.setattr(calls, "begin", counting)
    assert spans.span("eid.db.write") is spans.span("eid.db.read")  # the one shared no-op
    server, port = await _serve(None)
    try:
        async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            probe = Probe(channel, InMemorySpanExporter(), None)
            with caplog.at_level(logging.WARNING, logger="eid.rpc"):
                assert await probe.call("Ok") == grpc.StatusCode.OK
            assert made == []  # no access line wanted: nothing recorded
            with caplog.at_level(logging.INFO, logger="eid.rpc"):
                assert await probe.call("Ok", traceparent=TRACEPARENT) == grpc.StatusCode.OK
            assert len(made) == 1
    finally:
        await server.stop(None)
    [line] = [r for r in caplog.records if r.name == "eid.rpc"]
    fields = line.__dict__["fields"]
    assert fields["party_id"] == "rp_0123456789abcdef"
    assert fields["trace_id"] == TRACE  # the caller's, as the audit log keeps it
    assert fields["request_id"] == REQUEST_ID  # a UUID, as the SDKs make them
    assert SECRET not in line.getMessage()


async def test_work_outside_a_call_makes_no_span(traced: Probe) -> None:
    # The outbox dispatcher's and the purge's transactions: no lone root spans.
    with spans.span("eid.db.read"):
        await asyncio.sleep(0)
    assert traced.finished("eid.db.read") == []
    assert traced.spans.get_finished_spans() == ()


@pytest.mark.parametrize(
    ("given", "logged"),
    [
        ("0D9F6B1E-8C2A-4F57-9D3E-5B7A1C2E4F60", "0D9F6B1E-8C2A-4F57-9D3E-5B7A1C2E4F60"),
        ("01ARZ3NDEKTSV4RRFFQ69G5FAV", "01ARZ3NDEKTSV4RRFFQ69G5FAV"),  # the ULID spec's own
        ("", ""),
        ("079123456789", NOT_SHOWN),  # an ID number
        ("0901234567", NOT_SHOWN),  # a phone
        ("client:42", NOT_SHOWN),
        ("eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", NOT_SHOWN),  # a token
    ],
)
def test_the_access_log_shows_a_request_id_as_sent_only_if_it_is_a_uuid_or_ulid(
    given: str, logged: str
) -> None:
    """A client may choose any request id, the citizen's ID number among them:
    only the shapes the SDKs make are logged as sent."""
    assert access_log._request_id(pb.RegisterRequest(request_id=given)) == logged
