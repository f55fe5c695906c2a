"""When a failed delivery is tried again: exponential backoff, capped, with
"equal jitter" (half the delay fixed, half random) so that workers retrying
after one gateway outage do not all come back at the same instant."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta

_random = random.SystemRandom()


def retry_delay(
    attempt: int,
    base: timedelta,
    cap: timedelta,
    rand: Callable[[], float] = _random.random,
) -> timedelta:
    """The wait after failed attempt number `attempt` (1 for the first)."""
    exponent = min(max(attempt, 1) - 1, 32)
    ceiling = min(cap, base * (1 << exponent))
    return ceiling / 2 + (ceiling / 2) * rand()
