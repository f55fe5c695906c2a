"""Both clients send a failed call again, against a real in-process server that
counts the attempts: the same request_id each time, only the failures worth
another attempt, never a call that could act twice, never past the deadline."""

from __future__ import annotations

import asyncio
import datetime
import struct
import threading
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

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
from eid_client import AsyncEidClient, EidClient, EidError, RetryPolicy, _approval_calls, retry
from eid_client.cli import main
from tests.unit.test_client_calls import SIGNED_IN, VERIFIED, FakeEid

REGISTRATION: dict[str, Any] = {
    "personal_id": "001090001234",
    "full_name": "Nguyen Van An",
    "birth_date": "1990-05-17",
    "gender": "male",
    "phone_number": "0912345678",
    "portrait": struct.pack("<128f", *[1.0] * 128),
}
# Short pauses keep the tests fast; the shape of the policy is the default's.
QUICK = RetryPolicy(initial_backoff=0.01, max_backoff=0.05)
REGISTERED = pb.RegisterResponse()


@dataclass
class Pacing:
    """A call's attempts as the client paced them: the time each was given
    (what was left of the call's deadline) and the pauses slept between
    them. The tests assert on these instead of wall time, which a noisy
    machine stretches."""

    given: list[float] = field(default_factory=list)
    pauses: list[float] = field(default_factory=list)


@pytest.fixture
def pacing(monkeypatch: pytest.MonkeyPatch) -> Pacing:
    """Records both clients' pacing (each pause still slept)."""
    paced = Pacing()
    timeout = retry.Attempts.timeout

    def given(attempts: retry.Attempts) -> float:
        left = timeout(attempts)
        paced.given.append(left)
        return left

    def sleep(seconds: float) -> None:
        paced.pauses.append(seconds)
        time.sleep(seconds)

    async def sleep_async(seconds: float) -> None:
        paced.pauses.append(seconds)
        await asyncio.sleep(seconds)

    monkeypatch.setattr(retry.Attempts, "timeout", given)
    monkeypatch.setattr(retry, "time", SimpleNamespace(sleep=sleep))
    monkeypatch.setattr(retry, "asyncio", SimpleNamespace(sleep=sleep_async))
    return paced


def failing(
    times: int,
    code: grpc.StatusCode,
    reason: str = "",
    retry_after: float | None = None,
    then: Message = REGISTERED,
) -> Any:
    """A responder that fails `times` times with `code` (ErrorInfo `reason`,
    RetryInfo `retry_after` seconds when given), then answers `then`."""
    failed = 0

    def respond(request: Message, context: grpc.ServicerContext) -> Message:
        nonlocal failed
        if failed >= times:
            return then
        failed += 1
        details = []
        if reason:
            info = any_pb2.Any()
            info.Pack(error_details_pb2.ErrorInfo(reason=reason, domain="eid.v1"))
            details.append(info)
        if retry_after is not None:
            retry = error_details_pb2.RetryInfo()
            retry.retry_delay.FromTimedelta(datetime.timedelta(seconds=retry_after))
            packed = any_pb2.Any()
            packed.Pack(retry)
            details.append(packed)
        status = status_pb2.Status(code=code.value[0], message="try again", details=details)
        context.abort_with_status(rpc_status.to_status(status))
        raise AssertionError("abort_with_status returns only by raising")  # pragma: no cover

    return respond


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED])
def test_a_write_is_retried_with_its_first_request_id(code: grpc.StatusCode) -> None:
    fake = FakeEid(Register=failing(3, code, "STORE_BUSY"))
    with fake.serve() as target, EidClient(target, retry=QUICK) as client:
        client.register(**REGISTRATION)
    ids = [c.request.request_id for c in fake.calls]
    assert len(ids) == 4 and len(set(ids)) == 1 and len(ids[0]) == 36


async def test_the_async_client_retries_a_write_with_its_first_request_id() -> None:
    fake = FakeEid(Register=failing(2, grpc.StatusCode.UNAVAILABLE))
    with fake.serve() as target:
        async with AsyncEidClient(target, retry=QUICK) as client:
            await client.register(**REGISTRATION, request_id="order-42")
    assert [c.request.request_id for c in fake.calls] == ["order-42"] * 3


def test_attempts_stop_at_max_attempts_with_the_last_error() -> None:
    fake = FakeEid(Register=failing(100, grpc.StatusCode.UNAVAILABLE, "STORE_BUSY"))
    policy = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.01)
    with (
        fake.serve() as target,
        EidClient(target, retry=policy) as client,
        pytest.raises(EidError) as caught,
    ):
        client.register(**REGISTRATION)
    assert (caught.value.code, caught.value.reason) == (grpc.StatusCode.UNAVAILABLE, "STORE_BUSY")
    assert len(fake.calls) == 3


def test_retries_off_sends_once() -> None:
    fake = FakeEid(Register=failing(1, grpc.StatusCode.UNAVAILABLE))
    with (
        fake.serve() as target,
        EidClient(target, retry=RetryPolicy.off()) as client,
        pytest.raises(EidError),
    ):
        client.register(**REGISTRATION)
    assert len(fake.calls) == 1


def test_a_sign_in_is_sent_again_with_its_first_request_id() -> None:
    """The server answers the repeat with the first session, so a retry opens
    no second one (before, SignIn had no request id and was sent once)."""
    fake = FakeEid(SignIn=failing(1, grpc.StatusCode.UNAVAILABLE, then=SIGNED_IN))
    with fake.serve() as target, EidClient(target, retry=QUICK) as client:
        client.sign_in(personal_id="001090001234", password="correct horse")
    ids = [cast(pb.SignInRequest, c.request).request_id for c in fake.calls]
    assert len(ids) == 2 and ids[0] and ids[0] == ids[1]


def test_a_read_without_request_id_is_retried() -> None:
    fake = FakeEid(
        ListSessions=failing(2, grpc.StatusCode.UNAVAILABLE, then=pb.ListSessionsResponse())
    )
    with fake.serve() as target, EidClient(target, session_token="s", retry=QUICK) as client:
        client.list_sessions()
    assert len(fake.calls) == 3


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, "PHONE_NUMBER_INVALID"),
        (grpc.StatusCode.FAILED_PRECONDITION, "REGISTRY_MISMATCH"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, ""),
        (grpc.StatusCode.UNAVAILABLE, "APPROVAL_PENDING"),  # an answer wait_for_approval polls
        # Throttles on people: the wait is minutes, and hiding them helps nobody.
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_FAILED_ATTEMPTS"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_REQUESTS"),
    ],
)
def test_other_failures_are_raised_at_once(code: grpc.StatusCode, reason: str) -> None:
    fake = FakeEid(Register=failing(1, code, reason, retry_after=0.01))
    with (
        fake.serve() as target,
        EidClient(target, retry=QUICK) as client,
        pytest.raises(EidError) as caught,
    ):
        client.register(**REGISTRATION)
    assert caught.value.code == code
    assert len(fake.calls) == 1


def test_a_party_rate_limit_is_waited_out_as_retry_info_says() -> None:
    fake = FakeEid(
        Register=failing(1, grpc.StatusCode.RESOURCE_EXHAUSTED, "PARTY_RATE_LIMITED", 0.3)
    )
    with fake.serve() as target, EidClient(target, retry=QUICK) as client:
        began = time.monotonic()
        client.register(**REGISTRATION)
        took = time.monotonic() - began
    assert len(fake.calls) == 2
    assert took >= 0.3  # the backoff alone would be at most 0.01 s


def test_a_rate_limit_without_retry_info_is_raised() -> None:
    fake = FakeEid(Register=failing(1, grpc.StatusCode.RESOURCE_EXHAUSTED, "PARTY_RATE_LIMITED"))
    with (
        fake.serve() as target,
        EidClient(target, retry=QUICK) as client,
        pytest.raises(EidError),
    ):
        client.register(**REGISTRATION)
    assert len(fake.calls) == 1


def test_a_server_delay_past_the_deadline_is_raised_without_waiting(pacing: Pacing) -> None:
    fake = FakeEid(
        Register=failing(1, grpc.StatusCode.RESOURCE_EXHAUSTED, "PARTY_CITIZEN_RATE_LIMITED", 3)
    )
    with (
        fake.serve() as target,
        EidClient(target, timeout=1.0, retry=QUICK) as client,
        pytest.raises(EidError) as caught,
    ):
        client.register(**REGISTRATION)
    assert caught.value.retry_delay == datetime.timedelta(seconds=3)
    assert len(fake.calls) == 1 and pacing.pauses == []  # raised, not slept on


def test_all_attempts_together_stay_within_the_call_deadline(pacing: Pacing) -> None:
    """The timeout bounds the call, not each attempt: each attempt gets
    what is left of it, and no attempt starts once it has passed. Shown by
    the time each attempt was given and the pauses between them, not by how
    long the call took (a noisy machine stretches it)."""
    remaining: list[float] = []
    fail = failing(10**6, grpc.StatusCode.UNAVAILABLE)

    def respond(request: Message, context: grpc.ServicerContext) -> Message:
        remaining.append(context.time_remaining() or 0.0)
        return fail(request, context)  # type: ignore[no-any-return]

    fake = FakeEid(Register=respond)
    policy = RetryPolicy(max_attempts=1000, initial_backoff=0.05, max_backoff=0.1)
    with fake.serve() as target, EidClient(target, timeout=0.8, retry=policy) as client:
        client.health()  # connected first: no attempt below waits for it
        pacing.given.clear()
        with pytest.raises(EidError) as caught:
            client.register(**REGISTRATION)
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    given, pauses = pacing.given, pacing.pauses
    # UNAVAILABLE is retried up to 1000 attempts: the deadline ended them,
    # after an attempt, not in a pause that outlasted it, and every attempt
    # reached the server with time left.
    assert 2 <= len(given) < 1000
    assert len(pauses) == len(given) - 1
    assert len(remaining) == len(given) and all(r > 0 for r in remaining)
    # Each attempt got what was left of the one 0.8 s after the attempts and
    # pauses before it, not a fresh 0.8 s ...
    assert all(0 < left <= 0.8 for left in given)
    assert all(
        later <= earlier - pause
        for earlier, later, pause in zip(given, given[1:], pauses, strict=False)
    ), (given, pauses)
    # ... and the server was given it too (its reading of the grpc-timeout
    # header is rounded up, and may be read a little late).
    assert all(r <= left + 0.05 for r, left in zip(remaining, given, strict=True))


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_a_retry_the_server_holds_past_the_deadline_raises_why_it_was_retried(
    asynchronous: bool, pacing: Pacing
) -> None:
    """The server is unavailable, then hangs: the retry it holds ends with
    the call's deadline, and the caller is told the server was unavailable
    (DEADLINE_EXCEEDED would hide it), at the deadline, not later: while
    the server still holds the retry, which it answers only once let go."""
    remaining: list[float] = []
    release = threading.Event()
    fail = failing(1, grpc.StatusCode.UNAVAILABLE)

    def respond(request: Message, context: grpc.ServicerContext) -> Message:
        remaining.append(context.time_remaining() or 0.0)
        if len(remaining) == 1:
            return fail(request, context)  # type: ignore[no-any-return]
        release.wait(30)  # holds the retry until the caller was answered
        return REGISTERED

    def register(target: str) -> None:
        if asynchronous:

            async def call() -> None:
                async with AsyncEidClient(target, timeout=0.8, retry=QUICK) as client:
                    await client.register(**REGISTRATION)

            asyncio.run(call())
        else:
            with EidClient(target, timeout=0.8, retry=QUICK) as client:
                client.register(**REGISTRATION)

    fake = FakeEid(Register=respond)
    with fake.serve() as target:
        try:
            with pytest.raises(EidError) as caught:
                register(target)
        finally:
            release.set()
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    # The retry was given what was left of the call's 0.8 s, not a fresh
    # 0.8 s, and so was the server (its reading of the grpc-timeout header is
    # rounded up, and may be read a little late).
    assert len(remaining) == len(pacing.given) == 2 and len(pacing.pauses) == 1
    (first, retried), (pause,) = pacing.given, pacing.pauses
    assert 0 < retried <= first - pause and first <= 0.8, (pacing.given, pause)
    assert 0 < remaining[1] <= retried + 0.05, (remaining, retried)


def test_health_is_retried_by_the_library_but_eid_health_is_a_probe_sent_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    checks = 0

    def down(request: bytes, context: grpc.ServicerContext) -> bytes:
        nonlocal checks
        checks += 1
        context.abort(grpc.StatusCode.UNAVAILABLE, "starting")
        raise AssertionError("abort returns only by raising")  # pragma: no cover

    fake = FakeEid()
    fake._health = down  # type: ignore[method-assign]
    with fake.serve() as target:
        with EidClient(target, retry=QUICK) as client, pytest.raises(EidError):
            client.health()
        assert checks == QUICK.max_attempts
        checks = 0
        assert main(["--target", target, "health"]) == 1
    assert checks == 1
    assert "UNAVAILABLE" in capsys.readouterr().err


def test_wait_for_approval_polls_again_after_the_retry_info_delay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """APPROVAL_PENDING is not retried by the policy: wait_for_approval asks
    again, after the server's RetryInfo delay when it answered early."""
    asked: list[float] = []
    slept: list[float] = []
    pending = failing(1, grpc.StatusCode.UNAVAILABLE, "APPROVAL_PENDING", 0.3, then=VERIFIED)

    def verify(request: Message, context: grpc.ServicerContext) -> Message:
        asked.append(time.monotonic())
        return pending(request, context)  # type: ignore[no-any-return]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    clock = SimpleNamespace(monotonic=time.monotonic, sleep=sleep)
    monkeypatch.setattr(_approval_calls, "time", clock)
    fake = FakeEid(Verify=verify)
    with fake.serve() as target, EidClient(target, api_key="k", retry=QUICK) as party:
        # A 30 s poll: the server's at-once answer is early on any machine
        # (under half the wait it was asked for).
        assert party.wait_for_approval("apr_01b5ccfcb355081658966085", poll=30.0).verified
    assert len(asked) == 2
    # RetryInfo's 0.3 s, not the 1 s used when a server gives no delay.
    assert slept == [0.3]
    assert asked[1] - asked[0] >= 0.3
