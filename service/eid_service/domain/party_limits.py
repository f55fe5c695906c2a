"""How often a relying party may call about citizens: token buckets.

Each party has one bucket for all its calls that touch citizens and one per
(party, citizen), so that a party cannot keep probing one person. A bucket
holds a minute's worth of calls (the burst) and refills continuously at the
per-minute rate; a call takes one token or is refused, told how long until
the next token. The buckets live in the database, shared by every server
process (store/repositories/rate_buckets.py); this module is the arithmetic
both it and the in-memory test fake follow."""

from __future__ import annotations

import math
from dataclasses import dataclass

from eid_service.domain.errors import TooManyAttempts
from eid_service.domain.party import RelyingParty

# An empty bucket is full again after this long (capacity / refill rate).
REFILL_SECONDS = 60.0
# Refills are float sums: a token is there when this much of one is.
WHOLE_TOKEN = 1.0 - 1e-9

PARTY_RATE_LIMITED = "PARTY_RATE_LIMITED"
PARTY_CITIZEN_RATE_LIMITED = "PARTY_CITIZEN_RATE_LIMITED"


@dataclass(frozen=True)
class TokenBucket:
    """One limit on one key. `key` names no person: a party id, or a party id
    and the citizen's keyed blind index (the store digests it once more)."""

    key: str
    per_minute: int
    # The reason a refusal by this bucket gives.
    reason: str

    @property
    def capacity(self) -> float:
        return float(self.per_minute)

    @property
    def per_second(self) -> float:
        return self.per_minute / REFILL_SECONDS

    def available(self, tokens: float, refilled_at: float, now: float) -> float:
        """Tokens in a bucket left with `tokens` at `refilled_at` (epoch seconds).
        A `now` a little behind `refilled_at` (another server's clock) makes the
        sum dip for a moment; the next refill gives it back."""
        return min(self.capacity, tokens + (now - refilled_at) * self.per_second)

    def wait(self, tokens: float, refilled_at: float, now: float) -> float:
        """Seconds until the bucket holds a whole token."""
        return max(0.0, (1.0 - self.available(tokens, refilled_at, now)) / self.per_second)


def party_bucket(party: RelyingParty) -> TokenBucket:
    return TokenBucket(f"party\x00{party.id}", party.rate_per_minute, PARTY_RATE_LIMITED)


def citizen_bucket(party: RelyingParty, citizen: bytes) -> TokenBucket:
    """The (party, citizen) bucket; `citizen` is the citizen's subject (the
    keyed blind index of the ID number), the same whatever mode names them."""
    return TokenBucket(
        f"party-citizen\x00{party.id}\x00{citizen.hex()}",
        party.citizen_rate_per_minute,
        PARTY_CITIZEN_RATE_LIMITED,
    )


def rate_limited(reason: str, wait_seconds: float) -> TooManyAttempts:
    """The refusal of a call over a party limit, saying when to try again
    (rounded up to the millisecond: RetryInfo carries the fraction)."""
    # Float sums land a hair past a whole millisecond: that is not one more.
    wait = max(math.ceil(wait_seconds * 1000 - 1e-6), 1) / 1000
    if reason == PARTY_CITIZEN_RATE_LIMITED:
        message = "too many calls from this relying party about this citizen; slow down"
    else:
        message = "this relying party is over its rate limit; slow down"
    return TooManyAttempts(
        reason=reason, message=message, metadata={"retry_after_seconds": f"{wait:.3f}"}
    )
