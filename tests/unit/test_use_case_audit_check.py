"""verify_audit_chains over the in-memory store: every chain checked page by
page, each broken one reported once, at its first broken link."""

from __future__ import annotations

from dataclasses import replace

import pytest

from eid_service.use_cases.audit_check import AuditReport, verify_audit_chains
from eid_service.use_cases.ports import AuditEntry, BreakKind, BrokenLink, Subject
from tests.unit.fake_store import START, FakeUnitOfWork, subject_of

SUBJECTS = sorted(subject_of(f"0011907915{n:02d}") for n in range(5))
LAN = SUBJECTS[2]


def _log(events_per_subject: int = 3, subjects: list[Subject] = SUBJECTS) -> FakeUnitOfWork:
    uow = FakeUnitOfWork()
    for subject in subjects:
        for outcome in ("ok", "rejected", "ok", "ok")[:events_per_subject]:
            entry = AuditEntry(subject, None, "pty_bank", "verify.password", outcome, START)
            _append(uow, entry)
    return uow


def _append(uow: FakeUnitOfWork, entry: AuditEntry) -> None:
    uow.run_now(lambda r: r.audit.append(entry))


def _ids(uow: FakeUnitOfWork, subject: Subject) -> list[str]:
    return [c.event.id for c in uow.state.audit_events[subject]]


async def test_an_untouched_log_is_intact() -> None:
    report = await verify_audit_chains(_log())
    assert report == AuditReport(subjects=5, events=15, broken=())
    assert report.intact


async def test_an_empty_log_is_intact() -> None:
    assert await verify_audit_chains(FakeUnitOfWork()) == AuditReport(0, 0, ())


async def test_an_edited_event_breaks_its_digest() -> None:
    uow = _log()
    chain = uow.state.audit_events[LAN]
    chain[1] = replace(chain[1], event=replace(chain[1].event, outcome="verified"))
    report = await verify_audit_chains(uow)
    assert report.broken == (BrokenLink(LAN, 2, _ids(uow, LAN)[1], BreakKind.DIGEST_MISMATCH),)
    assert (report.subjects, report.events) == (5, 15)
    assert not report.intact


async def test_a_deleted_middle_event_is_a_gap_at_its_seq() -> None:
    uow = _log()
    del uow.state.audit_events[LAN][1]
    report = await verify_audit_chains(uow)
    assert report.broken == (BrokenLink(LAN, 2, None, BreakKind.SEQUENCE_GAP),)
    assert report.events == 14


async def test_a_deleted_middle_event_with_the_rest_renumbered_no_longer_links() -> None:
    uow = _log()
    chain = uow.state.audit_events[LAN]
    del chain[1]
    chain[1] = replace(chain[1], event=replace(chain[1].event, seq=2))
    uow.state.audit_heads[LAN] = (2, chain[1].digest)
    third = chain[1].event.id
    report = await verify_audit_chains(uow)
    assert report.broken == (BrokenLink(LAN, 2, third, BreakKind.PREVIOUS_MISMATCH),)


async def test_a_deleted_last_event_leaves_the_head_ahead() -> None:
    uow = _log()
    del uow.state.audit_events[LAN][-1]
    report = await verify_audit_chains(uow)
    assert report.broken == (BrokenLink(LAN, 3, None, BreakKind.HEAD_MISMATCH),)


async def test_every_event_deleted_leaves_the_head_alone() -> None:
    uow = _log()
    uow.state.audit_events[LAN].clear()
    report = await verify_audit_chains(uow)
    assert report.broken == (BrokenLink(LAN, 1, None, BreakKind.HEAD_MISMATCH),)
    assert report.subjects == 5


async def test_an_edited_head_names_the_last_event() -> None:
    uow = _log()
    uow.state.audit_heads[LAN] = (3, bytes(32))
    report = await verify_audit_chains(uow)
    assert report.broken == (BrokenLink(LAN, 3, _ids(uow, LAN)[2], BreakKind.HEAD_MISMATCH),)


async def test_a_deleted_head_does_not_hide_the_chain() -> None:
    uow = _log()
    del uow.state.audit_heads[LAN]
    report = await verify_audit_chains(uow)
    assert report.broken == (BrokenLink(LAN, 3, _ids(uow, LAN)[2], BreakKind.HEAD_MISMATCH),)
    assert report.subjects == 5


async def test_an_event_numbered_before_the_first_is_out_of_sequence() -> None:
    uow = _log()
    chain = uow.state.audit_events[LAN]
    chain[0] = replace(chain[0], event=replace(chain[0].event, seq=0))
    report = await verify_audit_chains(uow)
    assert report.broken == (BrokenLink(LAN, 0, _ids(uow, LAN)[0], BreakKind.SEQUENCE_GAP),)


async def test_of_several_subjects_only_the_broken_one_is_named() -> None:
    uow = _log()
    del uow.state.audit_events[SUBJECTS[4]][0]
    report = await verify_audit_chains(uow, batch=2)
    assert report.broken == (BrokenLink(SUBJECTS[4], 1, None, BreakKind.SEQUENCE_GAP),)
    assert (report.subjects, report.events) == (5, 14)


async def test_each_broken_chain_is_reported_once_at_its_first_broken_link() -> None:
    uow = _log()
    first, last = uow.state.audit_events[SUBJECTS[0]], uow.state.audit_events[SUBJECTS[3]]
    first[2] = replace(first[2], event=replace(first[2].event, outcome="x"))
    first[1] = replace(first[1], event=replace(first[1].event, outcome="x"))
    del last[-1]
    uow.state.audit_heads[SUBJECTS[3]] = (9, bytes(32))
    report = await verify_audit_chains(uow, batch=3)
    assert report.broken == (
        BrokenLink(SUBJECTS[0], 2, first[1].event.id, BreakKind.DIGEST_MISMATCH),
        BrokenLink(SUBJECTS[3], 3, None, BreakKind.HEAD_MISMATCH),
    )


@pytest.mark.parametrize(("batch", "pages"), [(2, 3), (5, 2), (500, 1)])
async def test_the_log_is_read_a_page_at_a_time(batch: int, pages: int) -> None:
    uow = _log()
    seen: list[tuple[int, int, int]] = []
    report = await verify_audit_chains(
        uow, batch=batch, progress=lambda r, total: seen.append((r.subjects, r.events, total))
    )
    assert report.subjects == 5
    assert uow.reads == 1 + pages  # the total, then each page (the last one short or empty)
    assert seen[0] == (0, 0, 5)
    assert seen[-1] == (5, 15, 5)
    assert [s for s, _, _ in seen] == sorted(s for s, _, _ in seen)


async def test_a_batch_must_hold_a_subject() -> None:
    with pytest.raises(ValueError, match="batch"):
        await verify_audit_chains(FakeUnitOfWork(), batch=0)
