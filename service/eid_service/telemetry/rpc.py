"""The span and the metrics of each RPC (imported only when telemetry is on).

A SERVER span named "eid.v1.IdentityService/Verify", child of the caller's W3C
`traceparent` when one came; its attributes are the RPC's (rpc.system,
rpc.service, rpc.method, rpc.grpc.status_code), the ErrorInfo reason of a
refusal as error.type, and eid.party_id for a relying party's call. The
status is ERROR only for what is the server's fault (INTERNAL, UNAVAILABLE,
...), as OpenTelemetry's gRPC conventions say. Metrics, per RPC, status and
party: eid.rpc.server.requests, eid.rpc.server.failures (with the reason) and
the rpc.server.call.duration histogram (seconds)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from grpc import aio
from opentelemetry import context as otel_context
from opentelemetry.metrics import Meter
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    Tracer,
    set_span_in_context,
)

from eid_service.api import metadata
from eid_service.telemetry import calls

Behaviour = Callable[[Any, aio.ServicerContext[Any, Any]], Awaitable[Any]]

# The codes a server span reports as an error: the server's faults, not the caller's.
SERVER_FAULTS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def remote_parent(context: aio.ServicerContext[Any, Any]) -> otel_context.Context:
    """The caller's span (from `traceparent`) as the parent; a new trace without one."""
    found = metadata.traceparent(context)
    if found is None:
        return otel_context.Context()
    trace_id, parent_id, flags = found
    parent = SpanContext(
        int(trace_id, 16),
        int(parent_id, 16),
        is_remote=True,
        trace_flags=TraceFlags(int(flags, 16) & TraceFlags.SAMPLED),
    )
    return set_span_in_context(NonRecordingSpan(parent), otel_context.Context())


class RpcObserver:
    """Wraps each method's handler (once per method) with its span and metrics."""

    def __init__(self, tracer: Tracer | None, meter: Meter | None) -> None:
        self._tracer = tracer
        self._requests = self._failures = self._duration = None
        if meter is not None:
            self._requests = meter.create_counter(
                "eid.rpc.server.requests", unit="{call}", description="RPCs answered"
            )
            self._failures = meter.create_counter(
                "eid.rpc.server.failures",
                unit="{call}",
                description="RPCs answered with an error, by ErrorInfo reason",
            )
            self._duration = meter.create_histogram(
                "rpc.server.call.duration",
                unit="s",
                description="time from a call's arrival to its answer",
                explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
            )

    def wrap(self, method: str, mapped: Behaviour) -> Behaviour:
        """`mapped` (the interceptor's handler, which records the outcome in
        the call's record) inside the call's span, its duration measured."""
        service, _, name = method.lstrip("/").partition("/")
        span_name = f"{service}/{name}"
        static = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}
        tracer = self._tracer

        async def observed(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            call = calls.begin()
            started = time.perf_counter()
            if tracer is None:
                try:
                    return await mapped(request, context)
                except asyncio.CancelledError:
                    call.code = grpc.StatusCode.CANCELLED
                    raise
                finally:
                    self._measure(static, call, time.perf_counter() - started)
            with tracer.start_as_current_span(
                span_name,
                context=remote_parent(context),
                kind=SpanKind.SERVER,
                attributes=static,
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                call.trace_id = format(span.get_span_context().trace_id, "032x")
                try:
                    return await mapped(request, context)
                except asyncio.CancelledError:
                    call.code = grpc.StatusCode.CANCELLED
                    raise
                finally:
                    _describe(span, call)
                    self._measure(static, call, time.perf_counter() - started)

        return observed

    def _measure(self, static: dict[str, str], call: calls.Call, seconds: float) -> None:
        if self._requests is None or self._failures is None or self._duration is None:
            return
        code = call.code or grpc.StatusCode.UNKNOWN
        attributes: dict[str, str | int] = {**static, "rpc.grpc.status_code": code.value[0]}
        if call.party_id:
            attributes["eid.party_id"] = call.party_id
        self._requests.add(1, attributes)
        self._duration.record(seconds, attributes)
        if code is not grpc.StatusCode.OK:
            attributes["error.type"] = call.reason or code.name
            self._failures.add(1, attributes)


def _describe(span: Span, call: calls.Call) -> None:
    if not span.is_recording():  # a call the sampler left out
        return
    code = call.code or grpc.StatusCode.UNKNOWN
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if call.party_id:
        span.set_attribute("eid.party_id", call.party_id)
    if code is grpc.StatusCode.OK:
        return
    span.set_attribute("error.type", call.reason or code.name)
    if code in SERVER_FAULTS:
        span.set_status(Status(StatusCode.ERROR, call.reason or code.name))
