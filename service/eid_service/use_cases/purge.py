"""Forget what has expired: sessions, shares, idempotency records, old counters
(credential attempts, party failures, rate limits), one-time codes, outbox
messages (erased when no sender ever took them) and approval requests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from eid_service.domain.credential_policy import SUBJECT_WINDOW
from eid_service.use_cases.ports import Repositories, UnitOfWork

# Expired shares stay a day, so a late redemption is still told (and the
# citizen shown) that the share expired rather than that it never existed.
SHARE_KEPT_AFTER_EXPIRY = timedelta(hours=24)
PARTY_FAILURES_KEPT = timedelta(hours=1)
# A used or expired code still answers "already used" / "expired" for a day.
CODES_KEPT_AFTER_EXPIRY = timedelta(days=1)
# A message no sender took in a day (none is configured for its channel) is
# stale: its code long expired. Erased messages are kept a week for operators.
UNSENT_MESSAGES_KEPT = timedelta(days=1)
MESSAGES_KEPT = timedelta(days=7)
# An approval request past its expiry still answers APPROVAL_EXPIRED (not
# NOT_FOUND) to a late Verify for a day.
APPROVALS_KEPT_AFTER_EXPIRY = timedelta(hours=24)


@dataclass(frozen=True)
class Purged:
    sessions: int
    shares: int
    idempotency_records: int
    party_failures: int
    credential_attempts: int
    rate_counters: int
    one_time_codes: int
    # Messages no sender ever took, erased; messages whose contents are gone, forgotten.
    messages_erased: int
    messages: int
    # Approval requests a day past their expiry.
    approvals: int = 0
    # Relying parties' token buckets idle long enough to be full again.
    rate_buckets: int = 0


# Rows deleted per transaction: a backlog must not hold the writer for long.
PURGE_BATCH = 500


async def purge_expired(uow: UnitOfWork, now: datetime) -> Purged:
    async def drain(purge: Callable[[Repositories], int]) -> int:
        total = 0
        while True:
            deleted = await uow.atomically(purge, long=True)
            total += deleted
            if deleted < PURGE_BATCH:
                return total

    return Purged(
        sessions=await drain(lambda r: r.sessions.purge_expired(now, PURGE_BATCH)),
        shares=await drain(
            lambda r: r.shares.purge_expired(now - SHARE_KEPT_AFTER_EXPIRY, PURGE_BATCH)
        ),
        idempotency_records=await drain(lambda r: r.idempotency.purge_expired(now, PURGE_BATCH)),
        party_failures=await drain(
            lambda r: r.parties.purge_failures(now - PARTY_FAILURES_KEPT, PURGE_BATCH)
        ),
        credential_attempts=await drain(
            lambda r: r.attempts.purge_lapsed(now - SUBJECT_WINDOW, PURGE_BATCH)
        ),
        rate_counters=await drain(lambda r: r.rate_limits.purge_lapsed(now, PURGE_BATCH)),
        one_time_codes=await drain(
            lambda r: r.activation_codes.purge_expired(now - CODES_KEPT_AFTER_EXPIRY, PURGE_BATCH)
        ),
        messages_erased=await drain(
            lambda r: r.outbox.erase_unrouted(now - UNSENT_MESSAGES_KEPT, now, PURGE_BATCH)
        ),
        messages=await drain(lambda r: r.outbox.purge_erased(now - MESSAGES_KEPT, PURGE_BATCH)),
        approvals=await drain(
            lambda r: r.approvals.purge_expired(now - APPROVALS_KEPT_AFTER_EXPIRY, PURGE_BATCH)
        ),
        rate_buckets=await drain(lambda r: r.rate_buckets.purge_full(now, PURGE_BATCH)),
    )
