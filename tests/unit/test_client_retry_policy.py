"""The retry policy's arithmetic (backoff bounds, full jitter, the deadline
budget) on a fake clock, and the default deadlines every call gets."""

from __future__ import annotations

import datetime
import random
import re
import threading
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf.message import Message

from eid.v1 import identity_service_pb2 as pb
from eid_client import EidClient, EidError, RetryPolicy
from eid_client._call_settings import DEFAULT_TIMEOUT, CallSettings
from eid_client.retry import READ_REQUESTS, Attempts, is_idempotent
from tests.unit.test_client_calls import FakeEid
from tests.unit.test_client_retries import REGISTRATION

UNAVAILABLE = EidError(grpc.StatusCode.UNAVAILABLE, "down")


def test_backoff_caps_grow_exponentially_up_to_the_maximum() -> None:
    policy = RetryPolicy(initial_backoff=0.1, max_backoff=2.0, multiplier=2.0)
    caps = [policy.backoff_cap(n) for n in range(1, 8)]
    assert caps == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0])
    assert policy.backoff_cap(10_000) == 2.0  # no overflow on absurd counts


def test_pauses_are_full_jitter_between_zero_and_the_cap() -> None:
    policy = RetryPolicy(max_attempts=100)
    rng = random.Random(7)
    for retry in (1, 3, 6):
        cap = policy.backoff_cap(retry)
        pauses = [policy.pause(UNAVAILABLE, retry, rng) for _ in range(2000)]
        assert all(p is not None and 0.0 <= p <= cap for p in pauses)
        # Spread over the whole range, not bunched at the cap (plain
        # exponential backoff) or at zero.
        spread = sorted(p for p in pauses if p is not None)
        assert spread[100] < 0.1 * cap and spread[-100] > 0.9 * cap


def test_a_server_delay_is_a_floor_and_a_long_one_is_not_waited() -> None:
    policy = RetryPolicy(max_backoff=0.5, max_server_delay=5.0)
    busy = EidError(grpc.StatusCode.UNAVAILABLE, "busy")
    busy.retry_delay = datetime.timedelta(seconds=1.5)
    rng = random.Random(1)
    assert all(policy.pause(busy, 1, rng) == 1.5 for _ in range(50))
    busy.retry_delay = datetime.timedelta(seconds=6)
    assert policy.pause(busy, 1, rng) is None


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_attempts_share_one_deadline() -> None:
    clock = FakeClock()
    policy = RetryPolicy(max_attempts=10, initial_backoff=1.0, max_backoff=1.0)
    attempts = Attempts(policy, 3.0, idempotent=True, clock=clock, rng=random.Random(3))
    assert attempts.timeout() == 3.0
    clock.now += 1.0  # the first attempt took a second
    pause = attempts.pause_after(UNAVAILABLE)
    assert pause is not None and 0 <= pause <= 1.0
    clock.now += pause
    assert attempts.timeout() == pytest.approx(2.0 - pause)
    clock.now = 102.9  # too late for any pause to leave time for an attempt
    never = [attempts.pause_after(UNAVAILABLE) for _ in range(20)]
    assert never.count(None) >= 18  # only a pause under 0.1 s would still fit


def test_no_retry_starts_that_could_not_finish_as_the_last_attempt_did() -> None:
    # Started just before the deadline, a retry would end DEADLINE_EXCEEDED
    # and hide the error that says why the call failed.
    clock = FakeClock()
    policy = RetryPolicy(max_attempts=10, initial_backoff=0.01, max_backoff=0.01)
    attempts = Attempts(policy, 1.0, idempotent=True, clock=clock, rng=random.Random(3))
    attempts.timeout()
    clock.now += 0.3  # 0.7 s left: room for another 0.3 s attempt
    assert attempts.pause_after(UNAVAILABLE) is not None
    attempts.timeout()
    clock.now += 0.4  # 0.3 s left, less than the 0.4 s this attempt took
    assert attempts.pause_after(UNAVAILABLE) is None


def test_a_retry_that_runs_out_of_the_deadline_raises_the_error_it_retried() -> None:
    """A retry is started only when the attempt before it says it has time
    (the test above); one that overruns anyway (the server slowed down)
    ends DEADLINE_EXCEEDED, which would hide why the call failed: the
    retried error is raised. A first attempt's own deadline is its answer."""
    clock = FakeClock()
    policy = RetryPolicy(max_attempts=10, initial_backoff=0.01, max_backoff=0.01)
    timed_out = EidError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")

    first_only = Attempts(policy, 1.0, idempotent=True, clock=clock, rng=random.Random(3))
    first_only.timeout()
    clock.now += 1.0
    assert first_only.pause_after(timed_out) is None
    assert first_only.explain(timed_out) is timed_out

    retried = Attempts(policy, 1.0, idempotent=True, clock=clock, rng=random.Random(3))
    retried.timeout()
    clock.now += 0.1
    assert retried.pause_after(UNAVAILABLE) is not None
    retried.timeout()
    clock.now += 0.5  # within the deadline: a real DEADLINE_EXCEEDED of the server's
    assert retried.explain(timed_out) is timed_out
    clock.now += 0.5  # past it: the retry ran out of the call's time
    assert retried.pause_after(timed_out) is None
    assert retried.explain(timed_out) is UNAVAILABLE
    # Any other error of the last attempt is its own answer.
    refused = EidError(grpc.StatusCode.PERMISSION_DENIED, "no")
    assert retried.explain(refused) is refused


def test_a_call_that_could_act_twice_gets_no_pause() -> None:
    attempts = Attempts(RetryPolicy(), 10.0, idempotent=False)
    attempts.timeout()
    assert attempts.pause_after(UNAVAILABLE) is None


def test_every_rpc_is_classified_for_retries() -> None:
    """A new RPC must carry a request_id or be listed as a read (SignIn
    was the one that was neither: a retry opened a second session)."""
    service = pb.DESCRIPTOR.services_by_name["IdentityService"]
    unclassified = [
        m.name
        for m in service.methods
        if "request_id" not in m.input_type.fields_by_name
        and m.input_type.name not in READ_REQUESTS
    ]
    assert unclassified == []
    assert not is_idempotent(pb.SignInRequest())  # no request id: never retried
    assert is_idempotent(pb.SignInRequest(request_id="r-0"))
    assert not is_idempotent(pb.RegisterRequest())  # no request id: never retried
    assert is_idempotent(pb.RegisterRequest(request_id="r-1"))
    assert is_idempotent(pb.ListSessionsRequest())


def test_the_node_client_retries_the_same_reads() -> None:
    """clients/node keeps its own list of the RPCs that only read (its
    requests have no request_id to tell): the same as this one."""
    source = (Path(__file__).parents[2] / "clients/node/src/retry.ts").read_text()
    listed = re.search(r"READ_RPCS[^=]*= new Set\(\[(.*?)\]\)", source, re.DOTALL)
    assert listed is not None, "READ_RPCS not found in retry.ts"
    node = set(re.findall(r'"(\w+)"', listed.group(1)))
    assert node == {name.removesuffix("Request") for name in READ_REQUESTS}


def test_the_java_client_retries_the_same_reads() -> None:
    """clients/java keeps its own list of the requests that only read: the same."""
    source = Path(__file__).parents[2] / "clients/java/src/main/java/eid/client/EidClient.java"
    listed = re.search(r"READ_REQUESTS\s*=(.*?);", source.read_text(), re.DOTALL)
    assert listed is not None, "READ_REQUESTS not found in EidClient.java"
    assert set(re.findall(r'"(\w+)"', listed.group(1))) == READ_REQUESTS


@pytest.mark.parametrize(
    "settings",
    [
        {"timeout": 0},
        {"timeout": -1.0},
        {"timeout": float("inf")},
        {"timeout": None},
        {"timeouts": {"Verify": 0.0}},
        {"timeouts": {"Verfy": 1.0}},
    ],
)
def test_no_call_can_be_told_to_wait_forever(settings: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="timeout"):
        EidClient("127.0.0.1:1", **settings)  # type: ignore[arg-type]


def test_per_rpc_timeouts_override_the_default() -> None:
    settings = CallSettings(timeouts={"Verify": 3.0})
    assert settings.timeout == DEFAULT_TIMEOUT == 10.0
    assert settings.timeout_of(pb.VerifyRequest()) == 3.0
    assert settings.timeout_of(pb.RegisterRequest()) == 10.0
    assert settings.timeout_of(None) == 10.0  # health


def test_a_hanging_server_costs_the_deadline_not_forever() -> None:
    """Shown by the deadline the server was given and by the caller being
    answered while the server still hangs (it answers only once let go),
    not by how long the call took (a noisy machine stretches it)."""
    released = threading.Event()
    remaining: list[float | None] = []

    def hang(request: Message, context: grpc.ServicerContext) -> Message:
        remaining.append(context.time_remaining())
        released.wait(30)
        return pb.RegisterResponse()

    fake = FakeEid(Register=hang)
    try:
        with fake.serve() as target, EidClient(target, timeouts={"Register": 0.4}) as client:
            began = time.monotonic()
            with pytest.raises(EidError) as caught:
                client.register(**REGISTRATION)
            took = time.monotonic() - began
            released.set()
    finally:
        released.set()
    assert caught.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    # The server's reading of the grpc-timeout header is rounded up, and may
    # be read a little late.
    (left,) = remaining
    assert left is not None and 0 < left <= 0.45
    assert took >= 0.35  # the deadline, waited out
    assert len(fake.calls) == 1  # the deadline is spent: no retry after it
