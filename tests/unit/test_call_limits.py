"""The limits' settings, the deadline cap and password admission, without a
server (tests/integration/test_transport_limits.py and
test_password_admission.py run the abuse against real ones)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from types import SimpleNamespace
from typing import Any, cast

import pytest

from eid_service.api import call_limits
from eid_service.api.call_limits import CallLimits, Context
from eid_service.config import Settings
from eid_service.domain.errors import DeadlineExceeded, Unavailable
from eid_service.limits import Limits, limits_from_env
from eid_service.settings_values import SettingError
from eid_service.use_cases.admission import Admission


def test_defaults_are_small_requests_and_bounded_connections() -> None:
    limits = Settings.from_env({}).limits
    assert limits == Limits()
    assert limits.message_limit("/eid.v1.IdentityService/Verify") == 64 * 1024
    assert limits.message_limit("/grpc.health.v1.Health/Check") == 64 * 1024
    assert limits.message_limit("/eid.v1.IdentityService/Register") == 1024 * 1024
    office = "/eid.v1.RegistrationOfficeService/"
    assert limits.message_limit(office + "RegisterLevel2") == 64 * 1024
    assert limits.message_limit(office + "UpgradeToLevel2") == 64 * 1024
    options = dict(limits.server_options())
    assert options["grpc.max_concurrent_streams"] == 100
    assert options["grpc.max_receive_message_length"] == 1024 * 1024
    assert options["grpc.http2.min_ping_interval_without_data_ms"] == 10_000
    assert options["grpc.max_connection_idle_ms"] == 300_000


def test_each_limit_is_read_from_its_variable() -> None:
    limits = limits_from_env(
        {
            "EID_MAX_STREAMS_PER_CONNECTION": "20",
            "EID_REQUEST_TIMEOUT_SECONDS": "2.5",
            "EID_MAX_DEADLINE_SECONDS": "30",
            "EID_MAX_PASSWORD_CHECKS": "3",
            "EID_KEEPALIVE_TIME_SECONDS": "0.5",
        }
    )
    assert (limits.max_streams_per_connection, limits.request_timeout_seconds) == (20, 2.5)
    assert (limits.max_deadline_seconds, limits.max_password_checks) == (30.0, 3)
    assert dict(limits.server_options())["grpc.keepalive_time_ms"] == 500


@pytest.mark.parametrize(
    ("env", "named", "says"),
    [
        ({"EID_MAX_CONCURRENT_RPCS": "lots"}, "EID_MAX_CONCURRENT_RPCS", "whole number"),
        ({"EID_MAX_CONCURRENT_RPCS": "0"}, "EID_MAX_CONCURRENT_RPCS", "at least 1"),
        ({"EID_MAX_MESSAGE_BYTES": "1.5"}, "EID_MAX_MESSAGE_BYTES", "whole number"),
        ({"EID_MAX_DEADLINE_SECONDS": "0"}, "EID_MAX_DEADLINE_SECONDS", "more than 0"),
        ({"EID_KEEPALIVE_TIME_SECONDS": "inf"}, "EID_KEEPALIVE_TIME_SECONDS", "finite"),
        (
            {"EID_REQUEST_TIMEOUT_SECONDS": "90"},
            "EID_REQUEST_TIMEOUT_SECONDS",
            "EID_MAX_DEADLINE_SECONDS",
        ),
        (
            {"EID_MAX_MESSAGE_BYTES": str(2 << 20)},
            "EID_MAX_MESSAGE_BYTES",
            "EID_MAX_BIOMETRIC_MESSAGE_BYTES",
        ),
    ],
)
def test_a_bad_limit_stops_the_start_naming_its_variable(
    env: dict[str, str], named: str, says: str
) -> None:
    with pytest.raises(SettingError) as caught:
        Settings.from_env(env)
    assert caught.value.name == named
    assert says in str(caught.value)


class _Context:
    """What the cap reads of a call's context."""

    def __init__(self, remaining: float | None) -> None:
        self.remaining = remaining

    def time_remaining(self) -> float | None:
        return self.remaining


def _run(call: Awaitable[Any]) -> Any:
    async def wrapper() -> Any:
        return await call

    return asyncio.run(wrapper())


def test_a_call_is_ended_at_the_cap_whatever_it_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limits = CallLimits(Limits(max_deadline_seconds=0.2, request_timeout_seconds=0.1))
    # The capped context's clock stands still: what it says is left is exact.
    monkeypatch.setattr(call_limits, "time", SimpleNamespace(monotonic=lambda: 1000.0))
    seen: list[float | None] = []

    async def slow(request: Any, context: Any) -> str:
        seen.append(context.time_remaining())
        await asyncio.sleep(5)
        return "never"

    capped = limits.capped(slow)
    for asked in (None, 30.0):
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded) as caught:
            _run(capped("request", cast(Context, _Context(asked))))
        # At least the cap; at most 10 times it, a guard against a wait that
        # is not the cap's (asked for, or the method's own 5 s), not a timing.
        assert 0.15 < time.monotonic() - started < 2.0
        assert caught.value.reason == "DEADLINE_CAPPED"
        assert caught.value.metadata == {"max_deadline_seconds": "0.2"}
    # The method budgets its waits on the capped deadline, not on the one asked for.
    assert seen == [pytest.approx(0.2), pytest.approx(0.2)]


def test_a_call_whose_own_deadline_comes_first_is_left_alone() -> None:
    limits = CallLimits(Limits(max_deadline_seconds=10, request_timeout_seconds=1))
    context = cast(Context, _Context(2.0))

    async def quick(request: Any, given: Any) -> Any:
        return given

    assert _run(limits.capped(quick)("request", context)) is context


def test_password_admission_refuses_at_once_and_keeps_a_quarter_for_parties() -> None:
    admission = Admission(8)
    for _ in range(6):
        admission.enter()
    with pytest.raises(Unavailable) as caught:
        admission.enter()
    assert caught.value.reason == "PASSWORD_CHECKS_BUSY"
    assert caught.value.metadata == {"retry_after_seconds": "1"}
    admission.enter(party=True)
    admission.enter(party=True)
    with pytest.raises(Unavailable):
        admission.enter(party=True)
    for _ in range(8):
        admission.leave()
    assert admission.admitted == 0


async def test_a_place_stands_until_the_work_ends_even_if_its_caller_left() -> None:
    """An Argon2id run goes on in its thread after its call is cancelled; the
    place it holds is given back only when it ends."""
    admission = Admission(4)
    hashing = asyncio.Event()

    async def hash_run() -> str:
        await hashing.wait()
        return "$argon2id$..."

    caller = asyncio.ensure_future(admission.hold_through(hash_run()))
    await asyncio.sleep(0)
    assert admission.admitted == 1
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert admission.admitted == 1  # the hash thread is still at work
    hashing.set()
    for _ in range(3):
        await asyncio.sleep(0)
    assert admission.admitted == 0
    assert await admission.hold_through(hash_run()) == "$argon2id$..."
    assert admission.admitted == 0
    for _ in range(3):  # a quarter is kept for parties' checks
        admission.enter()
    with pytest.raises(Unavailable):
        await admission.hold_through(hash_run())  # refused, never started
    assert admission.admitted == 3
