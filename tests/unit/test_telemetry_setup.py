"""Telemetry's set-up from the standard OTEL_* variables: off unless an
exporter or an endpoint is named (and then the SDK is not even imported),
bad values named, the console exporter's JSON lines."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from eid_service.config import Settings
from eid_service.serve import serve
from eid_service.telemetry.setup import TelemetrySettings, settings_from_env


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, TelemetrySettings()),
        ({"OTEL_SERVICE_NAME": "eid"}, TelemetrySettings()),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}, TelemetrySettings()),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}, TelemetrySettings(("otlp",), ("otlp",))),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4317"}, TelemetrySettings(("otlp",))),
        ({"OTEL_TRACES_EXPORTER": "console"}, TelemetrySettings(("console",))),
        ({"OTEL_METRICS_EXPORTER": "OTLP, console"}, TelemetrySettings((), ("otlp", "console"))),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"},
            TelemetrySettings(),
        ),
    ],
)
def test_what_the_variables_turn_on(env: dict[str, str], expected: TelemetrySettings) -> None:
    assert settings_from_env(env) == expected


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OTEL_TRACES_EXPORTER": "jaeger"}, "OTEL_TRACES_EXPORTER: unknown exporter 'jaeger'"),
        (
            {"OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
            "OTEL_EXPORTER_OTLP_PROTOCOL: eid exports OTLP over grpc only",
        ),
    ],
)
def test_a_bad_value_is_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        settings_from_env(env)


def test_serve_refuses_to_start_on_a_bad_telemetry_setting(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    with caplog.at_level(logging.ERROR):
        assert serve(Settings()) == 2
    assert "OTEL_TRACES_EXPORTER: unknown exporter 'zipkin'" in caplog.text


OFF = """
import sys
from eid_service import app, serve
from eid_service.telemetry import setup
assert setup.start({"OTEL_SERVICE_NAME": "eid"}) is None
print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
"""

CONSOLE = """
from eid_service.telemetry import setup, spans
telemetry = setup.start({"OTEL_TRACES_EXPORTER": "console"})
with spans._tracer.start_as_current_span("eid.v1.IdentityService/Verify"):
    with spans.span("eid.db.read", {"db.system.name": "sqlite"}):
        pass
telemetry.shutdown()
"""


def _python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


def test_off_the_sdk_is_never_imported() -> None:
    assert _python(OFF).strip() == "[]"


def test_the_console_exporter_writes_a_json_line_per_span() -> None:
    lines = [json.loads(line) for line in _python(CONSOLE).splitlines()]
    child, parent = lines
    assert (child["name"], parent["name"]) == ("eid.db.read", "eid.v1.IdentityService/Verify")
    assert child["parent_id"] == parent["context"]["span_id"]
    assert parent["resource"]["attributes"]["service.name"] == "eid-server"
    assert parent["resource"]["attributes"]["service.instance.id"]
