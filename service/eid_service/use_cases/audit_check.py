"""Checks every subject's tamper-evident audit chain (issue 13, Accountability).

The log is walked in pages of subjects, each page in one read transaction,
so a large log is never loaded whole and no transaction stays open for long.
Each broken chain is reported once, at its first broken link: later links of
a broken chain prove nothing more."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from eid_service.use_cases.ports import (
    BrokenLink,
    ChainCheck,
    Repositories,
    Subject,
    UnitOfWork,
)

DEFAULT_BATCH = 500


@dataclass(frozen=True)
class AuditReport:
    """What a check found: subjects and events checked, and the first broken
    link of each broken chain, in subject order."""

    subjects: int
    events: int
    broken: tuple[BrokenLink, ...]

    @property
    def intact(self) -> bool:
        return not self.broken


# Told after each page: the report so far and how many subjects have a head
# (the total to expect; chains whose head was deleted come on top).
Progress = Callable[[AuditReport, int], None]


async def verify_audit_chains(
    uow: UnitOfWork, *, batch: int = DEFAULT_BATCH, progress: Progress | None = None
) -> AuditReport:
    if batch < 1:
        raise ValueError("batch must be at least 1")
    total = await uow.read(lambda r: r.audit.count_subjects())
    report = AuditReport(0, 0, ())
    if progress is not None:
        progress(report, total)
    after: Subject | None = None
    while True:
        checks = await uow.read(partial(_check_page, after=after, limit=batch))
        if not checks:
            return report
        report = AuditReport(
            report.subjects + len(checks),
            report.events + sum(c.events for _, c in checks),
            report.broken + tuple(c.broken for _, c in checks if c.broken is not None),
        )
        if progress is not None:
            progress(report, total)
        if len(checks) < batch:
            return report
        after = checks[-1][0]


def _check_page(
    r: Repositories, after: Subject | None, limit: int
) -> list[tuple[Subject, ChainCheck]]:
    return [(s, r.audit.check_chain(s)) for s in r.audit.subjects_after(after, limit)]
