"""OpenTelemetry end to end: `eid-server serve` as its own process, exporting
over OTLP/gRPC to a receiver this test runs (tools/otlp_receiver.py), with
JSON logs. A citizen registers, activates, signs in, shares (online and
offline) and is verified in every mode but approval, with refusals among the
calls; once the server has stopped (and flushed), the spans, metrics and log
lines are checked, and every one of them is searched for the citizen's data
and the secrets of the run: none may appear."""

from __future__ import annotations

import base64
import json
import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from eid.v1 import identity_service_pb2 as pb
from eid_client.errors import EidError
from eid_service.demo import portrait_capture
from tests.e2e.conftest import BIN, Deployment, Device, prepare, wait_serving
from tools.otlp_receiver import OtlpReceiver, ReceivedSpan, attributes

pytestmark = pytest.mark.e2e

SERVICE = "eid.v1.IdentityService"
ID, NAME, BORN = "001190791514", "Nguyễn Thị Lan", "1990-05-17"
PHONE, PHONE_E164, EMAIL = "0912345678", "+84912345678", "lan.nguyen@example.vn"
PASSWORD = "correct horse battery staple"
TRACE, PARENT = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE}-{PARENT}-01"
# A UUID, as the SDKs make them: the access log shows such request ids as sent.
REGISTER_REQUEST_ID = "6a1f3c2e-9b4d-4e8a-a7c5-2d0f1b3e5c79"
REGISTERED: dict[str, Any] = {
    "full_name": NAME,
    "birth_date": BORN,
    "gender": pb.GENDER_FEMALE,
    "phone_number": PHONE,
    "email": EMAIL,
    "portrait": portrait_capture(ID),
}
SERVER_ERROR = 2  # opentelemetry.proto.trace.v1.Status.STATUS_CODE_ERROR


@dataclass
class Run:
    receiver: OtlpReceiver
    logs: list[dict[str, Any]]
    output: str  # everything the server wrote, stdout and stderr
    party_id: str
    # Every value of the run that is personal data or a secret.
    secrets: dict[str, str] = field(default_factory=dict)

    def spans(self, rpc: str) -> list[ReceivedSpan]:
        return [s for s in self.receiver.spans() if s.name == f"{SERVICE}/{rpc}"]

    def children(self, parent: ReceivedSpan) -> list[ReceivedSpan]:
        return [s for s in self.receiver.spans() if s.parent_id == parent.span_id]

    def rpc_lines(self, rpc: str) -> list[dict[str, Any]]:
        return [line for line in self.logs if line.get("rpc") == f"/{SERVICE}/{rpc}"]


def _ok(answer: Any) -> Any:
    assert not isinstance(answer, EidError), answer
    return answer


def _refused(answer: Any, reason: str) -> None:
    assert isinstance(answer, EidError) and answer.reason == reason, answer


def _calls(d: Deployment, app: Device, api_key: str, run: Run) -> None:
    """The citizen's life and a relying party's checks, with refusals."""
    registered = app(
        "Register",
        pb.RegisterRequest(request_id=REGISTER_REQUEST_ID, personal_id=ID, **REGISTERED),
        traceparent=TRACEPARENT,
    )
    _ok(registered)
    code = run.secrets["activation code"] = d.latest_code(PHONE_E164)
    portrait = REGISTERED["portrait"]
    run.secrets["portrait (hex)"] = portrait.hex()
    run.secrets["portrait (base64)"] = base64.b64encode(portrait).decode()
    _ok(
        app(
            "Activate",
            pb.ActivateRequest(personal_id=ID, activation_code=code, new_password=PASSWORD),
        )
    )
    signed = _ok(app("SignIn", pb.SignInRequest(personal_id=ID, password=PASSWORD)))
    run.secrets |= {"session token": signed.session_token, "refresh token": signed.refresh_token}
    auth = {"authorization": f"Bearer {signed.session_token}"}
    shares = [
        _ok(
            app(
                "ShareViaQR",
                pb.ShareViaQRRequest(attributes=[pb.ATTRIBUTE_FULL_NAME], mode=mode),
                **auth,
            )
        )
        for mode in (pb.SHARE_MODE_ONLINE, pb.SHARE_MODE_OFFLINE)
    ]
    bank = {"x_api_key": api_key}
    for index, share in enumerate(shares):
        run.secrets[f"share token {index}"] = share.token
        qr = pb.VerifyRequest(qr_share=pb.QrShareCredential(token=share.token))
        run.secrets[f"receipt {index}"] = _ok(app("Verify", qr, **bank)).receipt
    by_password = pb.VerifyRequest(
        password=pb.PasswordCredential(personal_id=ID, password=PASSWORD)
    )
    _ok(app("Verify", by_password, **bank))
    seen = len(d.outbox_lines())
    _ok(app("RequestOtp", pb.RequestOtpRequest(personal_id=ID), **bank))
    otp = run.secrets["one-time code"] = d.latest_code(PHONE_E164, after=seen)
    by_code = pb.VerifyRequest(one_time_code=pb.OneTimeCodeCredential(personal_id=ID, code=otp))
    _ok(app("Verify", by_code, **bank))
    claim = pb.DemographicCredential(personal_id=ID, full_name=NAME, birth_date=BORN)
    _ok(app("Verify", pb.VerifyRequest(demographic=claim), **bank))
    # Refusals: a stolen-looking key, a malformed ID number, a wrong password.
    _refused(app("Verify", by_password, x_api_key="eidk_not-a-key"), "API_KEY_INVALID")
    _refused(
        app("Register", pb.RegisterRequest(personal_id="12345", **REGISTERED)),
        "PERSONAL_ID_MALFORMED",
    )
    wrong = pb.SignInRequest(personal_id=ID, password=PASSWORD + " wrong")
    _refused(app("SignIn", wrong), "INVALID_CREDENTIALS")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    workdir = tmp_path_factory.mktemp("telemetry")
    with OtlpReceiver() as receiver:
        env = prepare(
            workdir,
            EID_LOG_FORMAT="json",
            EID_LOG_LEVEL="INFO",
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_METRICS_EXPORTER="otlp",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_EXPORTER_OTLP_INSECURE="true",
            OTEL_SERVICE_NAME="eid-telemetry-test",
        )
        modes = "password,one_time_code,demographic,qr_share"
        created = subprocess.run(
            [
                str(BIN / "eid-server"),
                "party",
                "create",
                "--name",
                "Telemetry Bank",
                "--modes",
                modes,
            ],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        api_key = created.strip().splitlines()[-1]
        party = re.search(r"rp_[0-9a-f]{16}", created)
        assert party is not None
        out, err = workdir / "server.out", workdir / "server.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            server = subprocess.Popen(
                [str(BIN / "eid-server"), "serve", "--workers", "1"],
                cwd=workdir,
                env=env,
                stdout=stdout,
                stderr=stderr,
            )
        d = Deployment(workdir, env["EID_LISTEN"], env, server)
        result = Run(receiver, [], "", party.group(0))
        result.secrets |= {
            "ID number": ID,
            "name": NAME,
            "birth date": BORN,
            "phone": PHONE,
            "phone (E.164)": PHONE_E164,
            "email": EMAIL,
            "password": PASSWORD,
            "API key": api_key,
        }
        app = Device(d.target)
        try:
            wait_serving(d)
            _calls(d, app, api_key, result)
        finally:
            app.channel.close()
            server.send_signal(signal.SIGTERM)  # it exports what it still holds, then exits
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        result.output = out.read_text("utf-8") + err.read_text("utf-8")
        result.logs = [json.loads(line) for line in err.read_text("utf-8").splitlines() if line]
        assert server.returncode == 0, result.output[-2000:]
        yield result


def test_every_rpc_is_a_server_span_of_this_service(run: Run) -> None:
    for rpc, count in {
        "Register": 2,
        "Activate": 1,
        "SignIn": 2,
        "ShareViaQR": 2,
        "RequestOtp": 1,
        "Verify": 6,
    }.items():
        found = run.spans(rpc)
        assert len(found) == count, rpc
        for span in found:
            assert span.span.kind == span.span.SPAN_KIND_SERVER
            assert span.resource["service.name"] == "eid-telemetry-test"
            assert {k: span.attributes[k] for k in ("rpc.system", "rpc.service", "rpc.method")} == {
                "rpc.system": "grpc",
                "rpc.service": SERVICE,
                "rpc.method": rpc,
            }


def test_the_callers_trace_is_continued_and_logged(run: Run) -> None:
    [register] = [s for s in run.spans("Register") if s.attributes["rpc.grpc.status_code"] == 0]
    assert (register.trace_id, register.parent_id) == (TRACE, PARENT)
    others = {s.trace_id for s in run.spans("Verify")}
    assert TRACE not in others and len(others) == 6  # calls without one: a trace each
    [line] = [x for x in run.rpc_lines("Register") if x["code"] == "OK"]
    assert (line["trace_id"], line["request_id"]) == (TRACE, REGISTER_REQUEST_ID)
    assert line["level"] == "INFO" and line["duration_ms"] > 0


def test_database_hashing_and_signing_are_child_spans(run: Run) -> None:
    [activate] = run.spans("Activate")
    assert "eid.password.hash" in {c.name for c in run.children(activate)}
    online, offline, by_password = run.spans("Verify")[:3]
    assert "eid.password.verify" in {c.name for c in run.children(by_password)}
    writes = [c for c in run.children(online) if c.name == "eid.db.write"]
    assert writes and all(w.attributes["db.system.name"] == "sqlite" for w in writes)
    signed = [g for w in writes for g in run.children(w) if g.name == "eid.sign.receipt"]
    assert len(signed) == 1  # signed inside the transaction, on the writer thread
    [_, offline_share] = run.spans("ShareViaQR")
    issued = [g for c in run.children(offline_share) for g in run.children(c)]
    assert "eid.sign.offline_credential" in {g.name for g in issued}
    assert offline.trace_id != online.trace_id


def test_status_reason_and_party_are_on_spans_and_log_lines(run: Run) -> None:
    verified = [s for s in run.spans("Verify") if s.attributes["rpc.grpc.status_code"] == 0]
    assert len(verified) == 5
    assert {s.attributes["eid.party_id"] for s in verified} == {run.party_id}
    [stolen] = [s for s in run.spans("Verify") if "error.type" in s.attributes]
    assert stolen.attributes["rpc.grpc.status_code"] == grpc.StatusCode.UNAUTHENTICATED.value[0]
    assert stolen.attributes["error.type"] == "API_KEY_INVALID"
    assert stolen.span.status.code != SERVER_ERROR  # the caller's mistake, not a fault
    lines = run.rpc_lines("Verify")
    assert [x["code"] for x in lines].count("OK") == 5
    assert {x["party_id"] for x in lines if x["code"] == "OK"} == {run.party_id}
    [refused] = [x for x in lines if x["code"] != "OK"]
    assert (refused["code"], refused["reason"]) == ("UNAUTHENTICATED", "API_KEY_INVALID")
    reasons = {x["reason"] for x in run.rpc_lines("SignIn") + run.rpc_lines("Register")}
    assert {"INVALID_CREDENTIALS", "PERSONAL_ID_MALFORMED"} <= reasons


def _points(run: Run, name: str) -> list[tuple[dict[str, Any], Any]]:
    found = []
    for metric in run.receiver.metrics():
        if metric.name == name:
            kind = metric.WhichOneof("data")
            assert kind is not None
            found += [(attributes(p.attributes), p) for p in getattr(metric, kind).data_points]
    return found


def test_requests_failures_and_latency_are_measured_per_rpc_and_party(run: Run) -> None:
    # Cumulative: the last export holds the totals.
    requests = {
        (a["rpc.method"], a.get("eid.party_id", ""), a["rpc.grpc.status_code"]): p.as_int
        for a, p in _points(run, "eid.rpc.server.requests")
    }
    assert requests[("Verify", run.party_id, 0)] == 5
    assert requests[("Register", "", 0)] == 1
    failures = {
        (a["rpc.method"], a["error.type"]) for a, _ in _points(run, "eid.rpc.server.failures")
    }
    assert {("Verify", "API_KEY_INVALID"), ("SignIn", "INVALID_CREDENTIALS")} <= failures
    latency = [
        p for a, p in _points(run, "rpc.server.call.duration") if a["rpc.method"] == "Verify"
    ]
    assert sum(p.count for p in latency) >= 6 and all(p.sum > 0 for p in latency)


def test_no_personal_data_or_secret_reaches_spans_metrics_or_logs(run: Run) -> None:
    assert len(run.secrets) >= 15 and run.receiver.spans() and run.logs
    exported = run.receiver.raw()
    for what, value in run.secrets.items():
        assert value, what
        escaped = json.dumps(value)[1:-1]  # as JSON would write it, non-ASCII escaped
        assert value.encode() not in exported, what
        assert value not in run.output and escaped not in run.output, what
    # The captured face, as bytes too (its text forms are among the secrets).
    portrait = REGISTERED["portrait"]
    assert portrait[:32] not in exported and portrait[-32:] not in exported
