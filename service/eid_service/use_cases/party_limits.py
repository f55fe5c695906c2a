"""Relying parties' rate limits (domain/party_limits.py), enforced on every
party call that touches citizens: Verify in each mode and RequestOtp.

`admit` takes the tokens inside the transaction the call opens anyway (one
statement for both buckets, no transaction of its own). A call that names
an ID number is counted against the (party, citizen) bucket before the
number is looked up, so numbers with and without an account count alike and
the refusal tells nothing about who has one. A refusal is raised, so the
transaction rolls back and the call has no effect, not even on the other
bucket.

A refusal also tells this process when the party's bucket will next hold a
token (only refills add tokens, at a known rate): until then `PartyGate`
refuses the party's calls here without touching the database, so a party
hammering past its limit costs a dictionary look-up a call."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timedelta

from eid_service.domain.errors import TooManyAttempts
from eid_service.domain.party import RelyingParty
from eid_service.domain.party_limits import (
    PARTY_CITIZEN_RATE_LIMITED,
    PARTY_RATE_LIMITED,
    citizen_bucket,
    party_bucket,
    rate_limited,
)
from eid_service.use_cases.ports import Repositories, Subject

MAX_REMEMBERED = 10_000


def admit(
    r: Repositories, party: RelyingParty, now: datetime, *, citizen: Subject | None = None
) -> None:
    """Takes a token from the party's bucket and, for a call about one
    citizen (their subject: `r.accounts.subject_of(personal_id)` before any
    look-up, or the subject of a redeemed share), from the (party, citizen)
    bucket; TooManyAttempts (RESOURCE_EXHAUSTED with RetryInfo) when either is
    empty. Call it inside the call's transaction and let the refusal
    propagate: the rollback gives back the token the other bucket gave."""
    buckets = [party_bucket(party)]
    if citizen is not None:
        buckets.append(citizen_bucket(party, citizen))
    refused = r.rate_buckets.take(buckets, now)
    if not refused:
        return
    reasons = {bucket.reason for bucket, _ in refused}
    # The citizen's refusal says more (stop probing this person); the wait
    # is the longest, so that retrying then passes both.
    reason = (
        PARTY_CITIZEN_RATE_LIMITED
        if PARTY_CITIZEN_RATE_LIMITED in reasons
        else (PARTY_RATE_LIMITED)
    )
    raise rate_limited(reason, max(wait for _, wait in refused))


class PartyGate:
    """Per process: when each party's bucket will next hold a token, as
    learnt from a refusal. Keyed by the party's limit too, so a party whose
    limit was raised is not held back by what was learnt under the old one."""

    def __init__(self) -> None:
        self._until: dict[tuple[str, int], datetime] = {}

    def check(self, party: RelyingParty, now: datetime) -> None:
        key = (party.id, party.rate_per_minute)
        until = self._until.get(key)
        if until is None:
            return
        if now >= until:
            self._until.pop(key, None)
            return
        raise rate_limited(PARTY_RATE_LIMITED, (until - now).total_seconds())

    def learn(self, party: RelyingParty, refused: TooManyAttempts, now: datetime) -> None:
        if refused.reason != PARTY_RATE_LIMITED:
            return
        if len(self._until) >= MAX_REMEMBERED:
            self._until = {k: v for k, v in self._until.items() if v > now}
            if len(self._until) >= MAX_REMEMBERED:
                self._until.clear()
        wait = float(refused.metadata.get("retry_after_seconds", "0"))
        self._until[(party.id, party.rate_per_minute)] = now + timedelta(seconds=wait)

    @contextlib.contextmanager
    def guard(self, party: RelyingParty, now: datetime) -> Iterator[None]:
        """Refuses a party known to be over its limit; learns from a refusal
        raised inside."""
        self.check(party, now)
        try:
            yield
        except TooManyAttempts as refused:
            self.learn(party, refused, now)
            raise
