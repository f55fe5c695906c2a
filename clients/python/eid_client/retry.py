"""When and how long the clients wait before sending a failed call again.

:class:`RetryPolicy` says which failures are worth another attempt and how
long to wait; :class:`Attempts` applies it to one call, within the call's
deadline; :func:`send_with_retries` (and its async twin, which only differs
in how it waits) sends the call for every client.

A call is sent again unchanged, so a write keeps the ``request_id`` of its
first attempt and the server answers a repeat with the first answer (AIP-155):
no retry can register, redeem, lock or sign in twice. A call without a
request id is retried only when it reads (List*, Get*, health).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from google.protobuf.message import Message

from eid_client.errors import EidError, error_from_rpc_error

_T = TypeVar("_T")

# The party's pacing limits: RetryInfo says, to the millisecond, when its
# bucket holds a token again, and waiting that long is what the server asks.
RATE_LIMIT_REASONS = frozenset({"PARTY_RATE_LIMITED", "PARTY_CITIZEN_RATE_LIMITED"})
# An answer, not a failure: wait_for_approval() polls on it by design.
NOT_RETRIED_REASONS = frozenset({"APPROVAL_PENDING"})
# Requests with no request_id that only read, so repeating them is harmless.
READ_REQUESTS = frozenset(
    {
        "ListAccessHistoryRequest",
        "ListApprovalRequestsRequest",
        "ListDependantsRequest",
        "ListLinkedDocumentsRequest",
        "ListSharesRequest",
        "ListSessionsRequest",
        "GetVerificationKeysRequest",
        "GetVerifyModeLocksRequest",
        "GetStatusWebhookRequest",
    }
)


# Jitter needs spread, not secrecy; one generator, not one seeded per call.
_JITTER = random.Random()  # noqa: S311


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Which failed calls are sent again, how often and after how long.

    Retried: ``UNAVAILABLE`` and ``ABORTED`` (except ``APPROVAL_PENDING``),
    and ``RESOURCE_EXHAUSTED`` for the reasons in ``rate_limit_reasons`` when
    the server sent a ``google.rpc.RetryInfo``. The other RESOURCE_EXHAUSTED
    reasons (wrong passwords or codes, codes sent too often) are throttles on
    people, with waits of minutes to a day: retrying them hides what an
    integrator must see. Before retry ``n`` (1, 2, ...) the client sleeps a
    random time between 0 and ``min(max_backoff, initial_backoff *
    multiplier ** (n - 1))`` ("full jitter", so clients that failed together
    do not come back together), and at least the server's RetryInfo delay. A
    retry that could not finish before the call's deadline is not started:
    the last error is raised instead. ``RetryPolicy.off()`` sends every call once.
    """

    max_attempts: int = 5
    initial_backoff: float = 0.1
    max_backoff: float = 2.0
    multiplier: float = 2.0
    retry_codes: frozenset[grpc.StatusCode] = frozenset(
        {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED}
    )
    rate_limit_reasons: frozenset[str] = RATE_LIMIT_REASONS
    # A longer RetryInfo delay is the caller's to plan for, not a pause in a call.
    max_server_delay: float = 5.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1 (1: no retries)")
        if not 0 < self.initial_backoff <= self.max_backoff or self.multiplier < 1:
            raise ValueError("need 0 < initial_backoff <= max_backoff and multiplier >= 1")

    @classmethod
    def off(cls) -> RetryPolicy:
        """Every call is sent once; failures are raised as they come."""
        return cls(max_attempts=1)

    def backoff_cap(self, retry: int) -> float:
        """The longest jittered pause before retry number ``retry`` (1-based)."""
        # Capped before the power can overflow on absurd attempt counts.
        exponent = min(retry - 1, 64)
        return min(self.max_backoff, self.initial_backoff * self.multiplier**exponent)

    def retryable(self, error: EidError) -> bool:
        if error.reason in NOT_RETRIED_REASONS:
            return False
        if error.code in self.retry_codes:
            return True
        return (
            error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
            and error.reason in self.rate_limit_reasons
            and error.retry_delay is not None
        )

    def pause(self, error: EidError, retry: int, rng: random.Random) -> float | None:
        """Seconds to sleep before retry number ``retry``, or None: do not retry."""
        if retry >= self.max_attempts or not self.retryable(error):
            return None
        jittered = rng.uniform(0.0, self.backoff_cap(retry))
        if error.retry_delay is None:
            return jittered
        asked = error.retry_delay.total_seconds()
        if asked > self.max_server_delay:
            return None
        return max(asked, jittered)


def is_idempotent(request: Message | None) -> bool:
    """Whether sending ``request`` twice has the effect of sending it once:
    it carries a request id, or it only reads (``None``: a health check)."""
    if request is None:
        return True
    descriptor = request.DESCRIPTOR
    if "request_id" in descriptor.fields_by_name:
        return bool(getattr(request, "request_id"))  # noqa: B009 (no static field here)
    return descriptor.name in READ_REQUESTS


class Attempts:
    """One call's attempts: the time each may take (what is left of the
    call's deadline) and the pause before the next one, if any."""

    def __init__(
        self,
        policy: RetryPolicy,
        timeout: float,
        *,
        idempotent: bool,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._deadline = clock() + timeout
        self._idempotent = idempotent
        self._rng = rng or _JITTER
        self._began = self._clock()  # when the latest attempt started
        self._retried: EidError | None = None  # the latest error sent again
        self.made = 0

    def timeout(self) -> float:
        """The time the next attempt may take; counts the attempt."""
        self.made += 1
        self._began = self._clock()
        return max(self._deadline - self._began, 0.0)

    def pause_after(self, error: EidError) -> float | None:
        """How long to sleep before the next attempt; None: raise ``error``."""
        if not self._idempotent:
            return None
        pause = self._policy.pause(error, self.made, self._rng)
        if pause is None or not math.isfinite(pause):
            return None
        # A retry that could not finish before the deadline could only fail,
        # with DEADLINE_EXCEEDED in place of the error that explains why:
        # it needs as long as the attempt before it took.
        now = self._clock()
        if now + pause + (now - self._began) >= self._deadline:
            return None
        self._retried = error
        return pause

    def explain(self, error: EidError) -> EidError:
        """What to raise for the attempt that failed with ``error`` and is not
        retried: ``error`` itself, unless a retry ran out of the call's
        deadline. That retry could only go on from the error before it (its
        duration is a guess from the attempt before), so DEADLINE_EXCEEDED
        would hide why the call failed: the retried error is raised."""
        if (
            error.code == grpc.StatusCode.DEADLINE_EXCEEDED
            and self._retried is not None
            and self._clock() >= self._deadline
        ):
            return self._retried
        return error


def send_with_retries(attempts: Attempts, send: Callable[[float], _T]) -> _T:
    """``send(timeout)`` until it succeeds or ``attempts`` gives up; the
    same request each time."""
    while True:
        try:
            return send(attempts.timeout())
        except grpc.RpcError as e:
            error = error_from_rpc_error(e)
            pause = attempts.pause_after(error)
            if pause is None:
                raise attempts.explain(error) from e
        time.sleep(pause)


async def send_with_retries_async(attempts: Attempts, send: Callable[[float], Awaitable[_T]]) -> _T:
    """:func:`send_with_retries`, awaiting each attempt and pause."""
    while True:
        try:
            return await send(attempts.timeout())
        except grpc.RpcError as e:
            error = error_from_rpc_error(e)
            pause = attempts.pause_after(error)
            if pause is None:
                raise attempts.explain(error) from e
        await asyncio.sleep(pause)
