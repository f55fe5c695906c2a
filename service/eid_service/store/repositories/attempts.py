"""Password attempts per (subject, source), counted before the check.

Each reservation is two atomic upserts (the subject's total, then the
source's count under the budget the total allows), so concurrent attempts
across processes can never outrun the limits; a refused one takes its
increment of the total back and counts nowhere. See domain/credential_policy.py."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, delete, or_, select, update

from eid_service.domain.credential_policy import (
    SOURCE_WINDOW,
    SUBJECT_WINDOW,
    source_budget,
    wait_before_next_try,
)
from eid_service.store.models import CredentialAttemptRow as A
from eid_service.store.repositories.base import Repository, rowcount
from eid_service.use_cases.ports import Subject

TOTAL = "*"


class CredentialAttemptRepository(Repository):
    def reserve(self, subject: Subject, source: str, now: datetime) -> timedelta | None:
        total = self._count(subject, TOTAL, now, SUBJECT_WINDOW, budget=None)
        assert total is not None
        budget = source_budget(total)
        if self._count(subject, source, now, SOURCE_WINDOW, budget=budget) is not None:
            return None
        row = self._c.execute(
            select(A.failures, A.last_failure_at).where(A.subject == subject, A.source == source)
        ).one()
        wait = wait_before_next_try(row[0], row[1], budget, now) or SOURCE_WINDOW
        # Undo the total's increment: the caller's transaction must not commit it.
        self._c.execute(
            update(A).where(A.subject == subject, A.source == TOTAL).values(failures=A.failures - 1)
        )
        return wait

    def succeeded(self, subject: Subject, source: str) -> None:
        self._c.execute(
            update(A).where(A.subject == subject, A.source == source).values(failures=0)
        )
        self._c.execute(
            update(A)
            .where(A.subject == subject, A.source == TOTAL, A.failures > 0)
            .values(failures=A.failures - 1)
        )

    def purge_lapsed(self, before: datetime) -> int:
        return rowcount(self._c.execute(delete(A).where(A.last_failure_at < before)))

    def _count(
        self,
        subject: Subject,
        source: str,
        now: datetime,
        window: timedelta,
        *,
        budget: int | None,
    ) -> int | None:
        """Counts one failure unless the budget is spent; the new count, or None."""
        lapsed = A.last_failure_at <= now - window
        stmt = self._upsert(A).values(
            subject=subject, source=source, failures=1, window_start=now, last_failure_at=now
        )
        where = None if budget is None else or_(lapsed, A.failures < budget)
        stmt = stmt.on_conflict_do_update(
            index_elements=[A.subject, A.source],
            set_={
                "failures": case((lapsed, 1), else_=A.failures + 1),
                "window_start": case((lapsed, now), else_=A.window_start),
                "last_failure_at": now,
            },
            where=where,
        ).returning(A.failures)
        found = self._c.execute(stmt).first()
        return None if found is None else int(found[0])
