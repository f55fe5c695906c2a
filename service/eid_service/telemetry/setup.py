"""Telemetry set-up from the standard OpenTelemetry environment variables, once
per server process (each worker its own: the SDK's export threads do not
survive a fork, and eid's workers are spawned anyway).

Off unless asked for: with no OTEL_TRACES_EXPORTER, OTEL_METRICS_EXPORTER or
OTLP endpoint set (or with OTEL_SDK_DISABLED=true), nothing is set up and the
SDK is never imported. The OpenTelemetry default exporter, otlp, applies once
an endpoint is named. Exporters: otlp (OTLP over gRPC; the exporter reads
OTEL_EXPORTER_OTLP_* itself), console (JSON lines on stdout), none. The rest
of the SDK's variables (OTEL_TRACES_SAMPLER, OTEL_BSP_*,
OTEL_METRIC_EXPORT_INTERVAL, OTEL_RESOURCE_ATTRIBUTES...) work as documented."""

from __future__ import annotations

import importlib.metadata
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eid_service.telemetry import spans

if TYPE_CHECKING:
    from eid_service.telemetry.rpc import RpcObserver

EXPORTERS = ("otlp", "console", "none")
DEFAULT_SERVICE_NAME = "eid-server"
INSTRUMENTATION = "eid_service"


@dataclass(frozen=True)
class TelemetrySettings:
    """The exporters chosen per signal; empty: that signal is off."""

    traces: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()

    @property
    def on(self) -> bool:
        return bool(self.traces or self.metrics)


def _flag(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _exporters(env: Mapping[str, str], signal: str) -> tuple[str, ...]:
    name = f"OTEL_{signal}_EXPORTER"
    raw = env.get(name, "").strip().lower()
    if not raw:
        endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")
        return ("otlp",) if any(env.get(e, "").strip() for e in endpoints) else ()
    chosen = tuple(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
    for exporter in chosen:
        if exporter not in EXPORTERS:
            raise ValueError(f"{name}: unknown exporter {exporter!r} (use otlp, console or none)")
    if "otlp" in chosen:
        for protocol in ("OTEL_EXPORTER_OTLP_PROTOCOL", f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL"):
            if env.get(protocol, "grpc").strip().lower() != "grpc":
                raise ValueError(f"{protocol}: eid exports OTLP over grpc only")
    return tuple(e for e in chosen if e != "none")


def settings_from_env(env: Mapping[str, str] | None = None) -> TelemetrySettings:
    """What the OTEL_* variables ask for; a ValueError names a bad one."""
    env = os.environ if env is None else env
    if _flag(env.get("OTEL_SDK_DISABLED", "")):
        return TelemetrySettings()
    return TelemetrySettings(_exporters(env, "TRACES"), _exporters(env, "METRICS"))


class Telemetry:
    """This process's tracer and meter providers and the RPC observer over them."""

    def __init__(self, rpc: RpcObserver, providers: list[Any]) -> None:
        self.rpc = rpc
        self._providers = providers

    def shutdown(self) -> None:
        """Exports what is still buffered and stops (blocking: call off the loop)."""
        spans.install(None)
        for provider in self._providers:
            provider.shutdown()


def start(env: Mapping[str, str] | None = None) -> Telemetry | None:
    """This process's telemetry as the OTEL_* variables ask, or None (off)."""
    env = os.environ if env is None else env
    chosen = settings_from_env(env)
    if not chosen.on:
        return None
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    from eid_service.telemetry.rpc import RpcObserver

    resource = _resource(env)
    providers: list[Any] = []
    tracer = meter = None
    if chosen.traces:
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        tracer_provider = TracerProvider(resource=resource)
        for name in chosen.traces:
            tracer_provider.add_span_processor(BatchSpanProcessor(_span_exporter(name)))
        tracer = tracer_provider.get_tracer(INSTRUMENTATION, _version())
        providers.append(tracer_provider)
    if chosen.metrics:
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        readers = [PeriodicExportingMetricReader(_metric_exporter(n)) for n in chosen.metrics]
        meter_provider = MeterProvider(resource=resource, metric_readers=readers)
        meter = meter_provider.get_meter(INSTRUMENTATION, _version())
        providers.append(meter_provider)
    spans.install(tracer)
    return Telemetry(RpcObserver(tracer, meter), providers)


def _version() -> str:
    try:
        return importlib.metadata.version("eid-service")
    except importlib.metadata.PackageNotFoundError:
        return "0"


def _resource(env: Mapping[str, str]) -> Any:
    from opentelemetry.sdk.resources import Resource

    given = env.get("OTEL_RESOURCE_ATTRIBUTES", "")
    defaults = {
        "service.name": DEFAULT_SERVICE_NAME,
        "service.version": _version(),
        # Each worker reports its own cumulative metrics: they must not merge.
        "service.instance.id": uuid.uuid4().hex,
    }
    if env.get("OTEL_SERVICE_NAME", "").strip():
        del defaults["service.name"]
    attributes = {k: v for k, v in defaults.items() if f"{k}=" not in given}
    return Resource.create(attributes)


def _span_exporter(name: str) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(formatter=lambda span: span.to_json(indent=None) + "\n")
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def _metric_exporter(name: str) -> Any:
    if name == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        return ConsoleMetricExporter(formatter=lambda data: data.to_json(indent=None) + "\n")
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter()
