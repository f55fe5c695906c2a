"""Relying parties' rate limits (domain/party_limits.py), enforced on every
party call that touches citizens: Verify in each mode and RequestOtp.

`admit` takes the tokens inside the transaction the call opens anyway (one
statement for both buckets, no transaction of its own). A call that names
an ID number is counted against the (party, citizen) bucket before the
number is looked up, so numbers with and without an account count alike and
the refusal tells nothing about who has one. A refusal is raised, so the
transaction rolls back and the call has no effect, not even on the other
bucket.

Each use case runs inside `ctx.party_gate.enter(...)` (party_gate.py): a
call that spends a token its process leased in a batch (a busy party) leaves
the party's bucket alone, and a party known to be over its limit is refused
before any transaction."""

from __future__ import annotations

from datetime import datetime

from eid_service.domain.party import RelyingParty
from eid_service.domain.party_limits import (
    PARTY_CITIZEN_RATE_LIMITED,
    PARTY_RATE_LIMITED,
    citizen_bucket,
    party_bucket,
    rate_limited,
)
from eid_service.use_cases.party_gate import Ticket
from eid_service.use_cases.ports import Repositories, Subject


def admit(
    r: Repositories,
    party: RelyingParty,
    now: datetime,
    *,
    citizen: Subject | None = None,
    ticket: Ticket | None = None,
) -> None:
    """Takes a token from the party's bucket and, for a call about one
    citizen (their subject: `r.accounts.subject_of(personal_id)` before any
    look-up, or the subject of a redeemed share), from the (party, citizen)
    bucket; TooManyAttempts (RESOURCE_EXHAUSTED with RetryInfo) when either is
    empty. Call it inside the call's transaction and let the refusal
    propagate: the rollback gives back the token the other bucket gave. A
    `ticket` whose party token is paid leaves the party's bucket alone."""
    buckets = [] if ticket is not None and ticket.paid else [party_bucket(party)]
    if citizen is not None:
        buckets.append(citizen_bucket(party, citizen))
    if not buckets:
        return
    refused = r.rate_buckets.take(buckets, now)
    if not refused:
        return
    # The citizen's refusal says more (stop probing this person); the wait
    # is the longest, so that retrying then passes both.
    reason = PARTY_RATE_LIMITED
    if any(bucket.reason == PARTY_CITIZEN_RATE_LIMITED for bucket, _ in refused):
        reason = PARTY_CITIZEN_RATE_LIMITED
    raise rate_limited(reason, max(wait for _, wait in refused))
