"""Forget what has expired: sessions, shares, idempotency records, old counters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from eid_service.domain.credential_policy import SUBJECT_WINDOW
from eid_service.use_cases.ports import Repositories, UnitOfWork

# Expired shares stay a day, so a late redemption is still told (and the
# citizen shown) that the share expired rather than that it never existed.
SHARE_KEPT_AFTER_EXPIRY = timedelta(hours=24)
PARTY_FAILURES_KEPT = timedelta(hours=1)


@dataclass(frozen=True)
class Purged:
    sessions: int
    shares: int
    idempotency_records: int
    party_failures: int
    credential_attempts: int


async def purge_expired(uow: UnitOfWork, now: datetime) -> Purged:
    def purge(r: Repositories) -> Purged:
        return Purged(
            sessions=r.sessions.purge_expired(now),
            shares=r.shares.purge_expired(now - SHARE_KEPT_AFTER_EXPIRY),
            idempotency_records=r.idempotency.purge_expired(now),
            party_failures=r.parties.purge_failures(now - PARTY_FAILURES_KEPT),
            credential_attempts=r.attempts.purge_lapsed(now - SUBJECT_WINDOW),
        )

    return await uow.atomically(purge)
