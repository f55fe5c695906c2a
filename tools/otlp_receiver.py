"""A small OTLP/gRPC receiver: it accepts trace and metric exports, as an
OpenTelemetry Collector would, and keeps them in memory. Tests and the tracing
bench point eid at it; to watch what a server exports, run

    python -m tools.otlp_receiver --port 4317

and serve with OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317: each export
is printed as one JSON line."""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import Any, Self

import grpc
from google.protobuf.json_format import MessageToJson
from google.protobuf.message import Message
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from eid_service.transport import ALONE_ON_PORT

TRACE_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
METRICS_SERVICE = "opentelemetry.proto.collector.metrics.v1.MetricsService"


def value_of(value: AnyValue) -> Any:
    """A plain Python value of an OTLP attribute value."""
    which = value.WhichOneof("value")
    return None if which is None else getattr(value, which)


def attributes(pairs: Iterator[KeyValue] | Any) -> dict[str, Any]:
    return {pair.key: value_of(pair.value) for pair in pairs}


@dataclass(frozen=True)
class ReceivedSpan:
    """A span with its resource's attributes, ids as hex."""

    resource: dict[str, Any]
    span: Span

    @property
    def name(self) -> str:
        return self.span.name

    @property
    def trace_id(self) -> str:
        return self.span.trace_id.hex()

    @property
    def span_id(self) -> str:
        return self.span.span_id.hex()

    @property
    def parent_id(self) -> str:
        return self.span.parent_span_id.hex()

    @property
    def attributes(self) -> dict[str, Any]:
        return attributes(self.span.attributes)


class OtlpReceiver:
    """Listens on 127.0.0.1 (an ephemeral port by default) until stopped."""

    def __init__(
        self,
        port: int = 0,
        on_export: Callable[[Message], None] | None = None,
        *,
        keep: bool = True,
    ) -> None:
        """`keep=False` only counts the spans received (a bench's long runs)."""
        self._lock = threading.Lock()
        self._exports: list[Message] = []
        self._on_export = on_export
        self._keep = keep
        self.span_count = 0
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=4), options=[ALONE_ON_PORT]
        )
        self._server.add_generic_rpc_handlers(
            [
                _service(
                    TRACE_SERVICE, ExportTraceServiceRequest, ExportTraceServiceResponse, self
                ),
                _service(
                    METRICS_SERVICE, ExportMetricsServiceRequest, ExportMetricsServiceResponse, self
                ),
            ]
        )
        self.port = self._server.add_insecure_port(f"127.0.0.1:{port}")
        if self.port == 0:
            raise RuntimeError(f"could not listen on 127.0.0.1:{port}")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._server.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.stop(None)

    def keep(self, export: Message) -> None:
        spans = 0
        if isinstance(export, ExportTraceServiceRequest):
            spans = sum(len(s.spans) for r in export.resource_spans for s in r.scope_spans)
        with self._lock:
            self.span_count += spans
            if self._keep:
                self._exports.append(export)
        if self._on_export is not None:
            self._on_export(export)

    def exports(self) -> list[Message]:
        with self._lock:
            return list(self._exports)

    def spans(self) -> list[ReceivedSpan]:
        found: list[ReceivedSpan] = []
        for export in self.exports():
            if isinstance(export, ExportTraceServiceRequest):
                for resource in export.resource_spans:
                    kept = attributes(resource.resource.attributes)
                    for scope in resource.scope_spans:
                        found.extend(ReceivedSpan(kept, span) for span in scope.spans)
        return found

    def metrics(self) -> list[Metric]:
        found: list[Metric] = []
        for export in self.exports():
            if isinstance(export, ExportMetricsServiceRequest):
                for resource in export.resource_metrics:
                    for scope in resource.scope_metrics:
                        found.extend(scope.metrics)
        return found

    def raw(self) -> bytes:
        """Every export as received on the wire (to search for what must not be there)."""
        return b"".join(export.SerializeToString() for export in self.exports())


def _service(
    name: str, request: type[Message], response: type[Message], receiver: OtlpReceiver
) -> grpc.GenericRpcHandler[Any, Any]:
    def export(message: Message, _context: grpc.ServicerContext) -> Message:
        receiver.keep(message)
        return response()

    handler = grpc.unary_unary_rpc_method_handler(
        export,
        request_deserializer=request.FromString,
        response_serializer=response.SerializeToString,
    )
    return grpc.method_handlers_generic_handler(name, {"Export": handler})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.otlp_receiver", description=__doc__)
    parser.add_argument("--port", type=int, default=4317, help="default 4317, OTLP/gRPC's")
    port = parser.parse_args(argv).port

    def show(export: Message) -> None:
        print(MessageToJson(export, indent=None), flush=True)

    with OtlpReceiver(port, on_export=show) as receiver:
        print(f"receiving OTLP on {receiver.endpoint} (Ctrl-C stops)", file=sys.stderr)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
