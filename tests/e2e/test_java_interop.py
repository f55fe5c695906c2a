"""The Java SDK (clients/java, built by `make java-client` from protos/ with
Debian's grpc-java) against a real `eid-server`: a JVM integrator's whole
first day, and its errors decoded from the rich error model."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message

from eid.v1 import identity_service_pb2 as pb
from tests.e2e.conftest import Deployment
from tests.e2e.test_walkthrough import BORN, ID, NAME, PASSWORD, PHONE, PHONE_E164
from tests.unit.test_client_calls import VERIFIED, FakeEid
from tests.unit.test_client_retries import failing

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "clients" / "java" / "build"
IN_CI = os.environ.get("CI") == "true"
# A party allowed one call a minute (about one citizen too).
LIMIT_ONE = ("--rate-limit", "1", "--citizen-rate-limit", "1")
# Short-lived JVMs: the C1 compiler alone starts them sooner.
JAVA = ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]


@pytest.fixture(scope="module")
def classpath() -> str:
    """The built SDK's classpath, after `make java-client` (a no-op when it is
    current). Without a JDK or Debian's grpc-java, skip outside CI (with the
    reason) and fail in CI, where .ci/run installs them."""
    done = subprocess.run(
        ["make", "--no-print-directory", "java-client", *([] if IN_CI else ["JAVA_OPTIONAL=1"])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        pytest.fail(f"make java-client failed:\n{done.stdout}\n{done.stderr}")
    if not (BUILD / ".built").exists():
        pytest.skip(f"Java client not built: {done.stdout.strip()}")
    return f"{BUILD / 'classes'}:{(BUILD / 'runtime-classpath').read_text()}"


def _java(classpath: str, main: str, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*JAVA, "-cp", classpath, main, *args],
        # UTF-8 arguments and output whatever this machine's locale is.
        env={**os.environ, "LC_ALL": "C.UTF-8", **env},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )


def _new_party(d: Deployment, *options: str) -> str:
    return d.admin("party", "create", "--name", "Java Bank", *options).strip().splitlines()[-1]


def test_java_client_registers_activates_verifies_and_redeems(
    classpath: str, deployment: Deployment
) -> None:
    d = deployment
    keys = {
        "EID_TARGET": d.target,
        "EID_API_KEY": _new_party(d, "--modes", "password,qr_share"),
        "EID_LIMITED_API_KEY": _new_party(d, "--modes", "password", *LIMIT_ONE),
    }
    d.admin("demo-portrait", "--id", ID, "--out", "face.f32")
    portrait = str(d.workdir / "face.f32")
    program = _java(
        classpath, "eid.interop.Interop", ID, NAME, BORN, PHONE, PASSWORD, portrait, **keys
    )
    watchdog = threading.Timer(60, program.kill)
    watchdog.start()
    try:
        assert program.stdout is not None and program.stdin is not None
        first = [program.stdout.readline(), program.stdout.readline()]
        assert first[1] == "need-code\n", (first, program.stderr and program.stderr.read())
        program.stdin.write(d.latest_code(PHONE_E164) + "\n")
        program.stdin.flush()
        out, err = program.communicate()
    finally:
        watchdog.cancel()
    assert program.returncode == 0, err
    lines = [line.rstrip("\n") for line in first] + out.splitlines()
    steps = {line.split("\t")[0]: line.split("\t")[1:] for line in lines}

    assert steps["registered"] == ["ACCOUNT_STATE_PENDING", ID]
    assert steps["activated"] == ["ACCOUNT_STATE_ACTIVE"]
    assert steps["verified"] == ["true", NAME]
    # The share carried the name and birth date only.
    assert steps["redeemed"] == ["true", BORN, "[]"]
    # Errors: code, reason, ErrorReason value, field violations, retry delay (ms).
    assert steps["again"] == [
        "FAILED_PRECONDITION",
        "SHARE_ALREADY_REDEEMED",
        "SHARE_ALREADY_REDEEMED",
        "",
        "-",
    ]
    assert steps["invalid"] == [
        "INVALID_ARGUMENT",
        "PERSONAL_ID_MALFORMED",
        "PERSONAL_ID_MALFORMED",
        "personal_id: PERSONAL_ID_MALFORMED",
        "-",
    ]
    assert steps["first"] == ["OK"]
    code, reason, value, fields, delay = steps["limited"]
    assert (code, reason, value, fields) == (
        "RESOURCE_EXHAUSTED",
        "PARTY_CITIZEN_RATE_LIMITED",
        "PARTY_CITIZEN_RATE_LIMITED",
        "",
    )
    assert 0 < int(delay) <= 60_000  # one call a minute
    # A reason from a newer server: the enum says UNSPECIFIED, the string keeps it.
    assert steps["unknown"] == [
        "FAILED_PRECONDITION",
        "A_REASON_FROM_THE_FUTURE",
        "ERROR_REASON_UNSPECIFIED",
        "",
        "-",
    ]
    # A garbled trailer leaves the status code alone.
    assert steps["garbled"] == ["FAILED_PRECONDITION", "null", "ERROR_REASON_UNSPECIFIED", "", "-"]

    example = _java(
        classpath,
        "eid.examples.VerifyCitizen",
        ID,
        PASSWORD,
        EID_TARGET=d.target,
        EID_API_KEY=keys["EID_API_KEY"],
    )
    out, err = example.communicate(timeout=30)
    assert (example.returncode, out) == (0, f"verified: {NAME} (ACCOUNT_LEVEL_1)\n"), err


# How the scripted server fails each scenario of eid.interop.RetryCheck (keyed
# by the QR token or personal ID the program sends): (failures, code, reason,
# RetryInfo seconds); the answer comes after that many failures.
ALWAYS = 1_000_000
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
SCRIPTS = {
    "retried": (2, UNAVAILABLE, "", None),
    "paced": (1, grpc.StatusCode.RESOURCE_EXHAUSTED, "PARTY_RATE_LIMITED", 0.3),
    "throttled": (ALWAYS, grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_FAILED_ATTEMPTS", None),
    "pending": (ALWAYS, grpc.StatusCode.ABORTED, "APPROVAL_PENDING", None),
    "exhausted": (ALWAYS, UNAVAILABLE, "", None),
    "sign-in": (ALWAYS, UNAVAILABLE, "", None),
    "no-id": (ALWAYS, UNAVAILABLE, "", None),
    "two": (0, UNAVAILABLE, "", None),  # its Verify answers, the read after it fails
    "off": (ALWAYS, UNAVAILABLE, "", None),
    "deadline": (1, UNAVAILABLE, "", None),  # then held past the call's deadline
    "slow": (ALWAYS, UNAVAILABLE, "", None),  # after 0.6 s of the client's 1 s
}
# GetVerificationKeys fails the "keys" scenario's first attempt and the "two"
# scenario's read (the 1st and 3rd calls); the "keys" retry is answered.
KEYS_FAILING = {0, 2}


def _scripted() -> FakeEid:
    responders = {
        name: failing(times, code, reason, delay, then=VERIFIED)
        for name, (times, code, reason, delay) in SCRIPTS.items()
    }

    def verify(request: Any, context: grpc.ServicerContext) -> Message:
        token = request.qr_share.token
        answer: Message = responders[token](request, context)
        if token == "deadline":
            time.sleep(2)  # the retry: held until the client's 1 s deadline has passed
        return answer

    def verify_or_hold(request: Any, context: grpc.ServicerContext) -> Message:
        if request.qr_share.token == "slow":
            time.sleep(0.6)
        return verify(request, context)

    def sign_in(request: Any, context: grpc.ServicerContext) -> Message:
        answer: Message = responders[request.personal_id](request, context)
        return answer

    unavailable = failing(ALWAYS, UNAVAILABLE)
    keys_asked = 0

    def keys(request: Any, context: grpc.ServicerContext) -> Message:
        nonlocal keys_asked
        keys_asked += 1
        if keys_asked - 1 in KEYS_FAILING:
            failed: Message = unavailable(request, context)
            return failed
        return pb.GetVerificationKeysResponse()

    return FakeEid(Verify=verify_or_hold, SignIn=sign_in, GetVerificationKeys=keys)


def test_java_client_retries_only_what_cannot_act_twice_within_the_deadline(
    classpath: str,
) -> None:
    """The SDK's retry rules are the Python and Node clients': UNAVAILABLE and
    ABORTED, and a party's pacing limit after its RetryInfo delay, are sent
    again with the same request_id; a person's throttle, APPROVAL_PENDING,
    SignIn and a write without a request_id are not; nor is a retry past the
    call's deadline, which raises why it was retried."""
    fake = _scripted()
    with fake.serve() as target:
        program = _java(classpath, "eid.interop.RetryCheck", EID_TARGET=target)
        out, err = program.communicate(timeout=60)
    assert program.returncode == 0, err
    outcome = {}
    for line in out.splitlines():
        name, *result, ms = line.split("\t")
        outcome[name] = (tuple(result), int(ms))

    def attempts(name: str) -> list[str]:
        """The request_id of each attempt the server saw for a scenario."""
        seen: list[str] = []
        for c in fake.calls:
            request: Any = c.request
            if (c.method == "Verify" and request.qr_share.token == name) or (
                c.method == "SignIn" and request.personal_id == name
            ):
                seen.append(request.request_id)
        return seen

    retried = attempts("retried")
    assert outcome["retried"][0] == ("OK",)
    assert len(retried) == 3 and retried[0] and len(set(retried)) == 1
    assert outcome["paced"][0] == ("OK",) and len(attempts("paced")) == 2
    assert outcome["paced"][1] >= 300  # the server's RetryInfo delay was waited out
    assert outcome["throttled"][0] == ("RESOURCE_EXHAUSTED", "TOO_MANY_FAILED_ATTEMPTS")
    assert outcome["pending"][0] == ("ABORTED", "APPROVAL_PENDING")
    assert outcome["exhausted"][0] == ("UNAVAILABLE", "null")
    assert outcome["sign-in"][0] == ("UNAVAILABLE", "null")
    assert outcome["keys"][0] == ("OK",)
    assert outcome["no-id"][0] == ("UNAVAILABLE", "null")
    assert attempts("no-id") == [""]
    # A lambda whose Verify was answered is not run again for its failed read.
    assert outcome["two"][0] == ("UNAVAILABLE", "null") and attempts("two") == [""]
    assert len([c for c in fake.calls if c.method == "GetVerificationKeys"]) == 3
    assert outcome["off"][0] == ("UNAVAILABLE", "null")
    # The retry held past the 1 s deadline: the caller hears UNAVAILABLE, not
    # DEADLINE_EXCEEDED, and within the deadline, not after the server's 2 s.
    assert outcome["deadline"][0] == ("UNAVAILABLE", "null")
    assert outcome["deadline"][1] < 1_900
    for name, sent in (("throttled", 1), ("pending", 1), ("exhausted", 3), ("sign-in", 3)):
        assert len(attempts(name)) == sent, name
    # A sign-in is sent again with its first request id (the server answers a
    # repeat with the first session); before, SignIn had none and was sent once.
    signed = attempts("sign-in")
    assert signed[0] and len(set(signed)) == 1
    assert len(attempts("off")) == 1 and len(attempts("deadline")) == 2
    # The attempt took 0.6 s of 1 s: a retry needing as long could not end in time.
    assert outcome["slow"][0] == ("UNAVAILABLE", "null") and len(attempts("slow")) == 1


def test_java_client_survives_a_hostile_server(classpath: str) -> None:
    """Damaged and extreme error details (a RetryInfo near Duration's limits,
    a huge negative delay): the SDK raises its EidException, never an
    ArithmeticException, and waits no absurd time (eid.interop.HostileCheck,
    an in-process fake server)."""
    program = _java(classpath, "eid.interop.HostileCheck")
    out, err = program.communicate(timeout=60)
    assert program.returncode == 0, out + err
    assert "hostile check: ok" in out
