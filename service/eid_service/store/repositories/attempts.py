"""Password attempts per (subject, source), counted before the check.

Each reservation is two atomic upserts (the subject's total, then the
source's count under the budget the total allows), so concurrent attempts
across processes can never outrun the limits; a refused one takes its
increment of the total back and counts nowhere. See domain/credential_policy.py."""

from __future__ import annotations

from datetime import datetime, timedelta

from eid_service.domain.credential_policy import (
    SOURCE_WINDOW,
    SUBJECT_WINDOW,
    source_budget,
    wait_before_next_try,
)
from eid_service.store.repositories.base import Repository
from eid_service.store.sql import Sql
from eid_service.use_cases.ports import Subject

TOTAL = "*"
SOURCE_PURPOSE = "attempt-source"

# A failure counted unless the budget is spent; a lapsed window starts again at 1.
_COUNT = """
INSERT INTO credential_attempts (subject, source, failures, window_start, last_failure_at)
VALUES (:subject, :source, 1, :now, :now)
ON CONFLICT (subject, source) DO UPDATE SET
  failures = CASE WHEN credential_attempts.last_failure_at <= :cut THEN 1
                  ELSE credential_attempts.failures + 1 END,
  window_start = CASE WHEN credential_attempts.last_failure_at <= :cut THEN :now
                      ELSE credential_attempts.window_start END,
  last_failure_at = :now
"""
_COUNT_TOTAL = Sql(_COUNT + " RETURNING failures")
_COUNT_UNDER_BUDGET = Sql(
    _COUNT
    + " WHERE credential_attempts.last_failure_at <= :cut"
    + " OR credential_attempts.failures < :budget RETURNING failures"
)
_READ = Sql(
    "SELECT failures, last_failure_at FROM credential_attempts"
    " WHERE subject = :subject AND source = :source"
)
_TAKE_BACK = Sql(
    "UPDATE credential_attempts SET failures = failures - 1"
    " WHERE subject = :subject AND source = :source AND failures > 0"
)
_RESET = Sql(
    "UPDATE credential_attempts SET failures = 0 WHERE subject = :subject AND source = :source"
)
_PURGE = Sql(
    "DELETE FROM credential_attempts WHERE (subject, source) IN (SELECT subject, source"
    " FROM credential_attempts WHERE last_failure_at < :before LIMIT :limit)"
)


class CredentialAttemptRepository(Repository):
    def reserve(self, subject: Subject, source: str, now: datetime) -> timedelta | None:
        t = self._t(now)
        total = self._db.one(
            _COUNT_TOTAL,
            {"subject": subject, "source": TOTAL, "now": t, "cut": self._t(now - SUBJECT_WINDOW)},
        )
        assert total is not None
        budget = source_budget(int(total[0]))
        mine = {"subject": subject, "source": self._key(source)}
        counted = self._db.one(
            _COUNT_UNDER_BUDGET,
            {**mine, "now": t, "cut": self._t(now - SOURCE_WINDOW), "budget": budget},
        )
        if counted is not None:
            return None
        row = self._db.one(_READ, mine)
        assert row is not None
        wait = wait_before_next_try(row[0], self._read_t(row[1]), budget, now)
        # Refused attempts count nowhere: take the total's increment back.
        self._db.count(_TAKE_BACK, {"subject": subject, "source": TOTAL})
        return wait or SOURCE_WINDOW

    def succeeded(self, subject: Subject, source: str) -> None:
        # The total first, as in `reserve`: one lock order, no deadlock between workers.
        self._db.count(_TAKE_BACK, {"subject": subject, "source": TOTAL})
        self._db.count(_RESET, {"subject": subject, "source": self._key(source)})

    def _key(self, source: str) -> str:
        # Client addresses are personal data too: kept only as keyed digests.
        return self._p.hasher.digest(SOURCE_PURPOSE, source).hex()

    def purge_lapsed(self, before: datetime, limit: int) -> int:
        return self._db.count(_PURGE, {"before": self._t(before), "limit": limit})
