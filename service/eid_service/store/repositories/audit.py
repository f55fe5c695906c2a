"""Append-only, tamper-evident access history.

Each subject's events (the person an ID number names) form a chain: an
event's digest is a keyed hash of its fields and the previous event's digest,
so editing or deleting one breaks every later link. The chain's head lives in
`audit_chains`: an append bumps it with one upsert that returns the previous
head (and, on PostgreSQL, locks it until commit, which orders concurrent
appends), so no event has to be read; inserting the event sets the new head
(a trigger, migration 0021), so an append is two statements.

`check_chain` verifies a chain and its head in one statement, so on
PostgreSQL (read committed) an append committing meanwhile cannot look like
tampering; `subjects_after` pages through every subject for a full check.
A subject's whole history removed with its head leaves no trace here: the
chains are per subject."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eid_service.domain.audit_event_id import new_event_id
from eid_service.store.repositories.base import Repository
from eid_service.store.sql import Sql
from eid_service.use_cases.ports import (
    AuditEntry,
    AuditEvent,
    BreakKind,
    BrokenLink,
    ChainCheck,
    Subject,
)

AUDIT_PURPOSE = "audit"


def _canonical(e: AuditEvent, prev: bytes | None) -> str:
    return "|".join(
        [
            e.id,
            e.account_id or "",
            e.party_id or "",
            e.action,
            e.outcome,
            e.created_at.isoformat(),
            str(e.seq),
            (prev or b"").hex(),
        ]
        # Events from before actors (reasons, request and trace ids) existed
        # keep the digest they were given: a field is hashed only when set.
        + ([f"actor={e.actor}"] if e.actor else [])
        + ([f"reason={e.reason}"] if e.reason else [])
        + ([f"request_id={e.request_id}"] if e.request_id else [])
        + ([f"trace_id={e.trace_id}"] if e.trace_id else [])
    )


_BUMP = Sql(
    "INSERT INTO audit_chains (subject, seq, head) VALUES (:subject, 1, NULL)"
    " ON CONFLICT (subject) DO UPDATE SET seq = audit_chains.seq + 1 RETURNING seq, head"
)
_INSERT = Sql(
    "INSERT INTO audit_events (id, subject, account_id, party_id, actor, action, outcome,"
    " created_at, seq, prev_digest, digest, reason, request_id, trace_id) VALUES (:id,"
    " :subject, :account_id, :party_id, :actor, :action, :outcome, :created_at, :seq, :prev,"
    " :digest, :reason, :request_id, :trace_id)"
)
_EVENTS = Sql(
    "SELECT id, account_id, party_id, action, outcome, created_at, seq, prev_digest, digest,"
    " actor, reason, request_id, trace_id FROM audit_events WHERE subject = :subject ORDER BY seq"
)
# The head and every event in one statement (one snapshot); one row with no
# event when the subject has none. Columns from the third on are _EVENTS's.
_CHAIN = Sql(
    "SELECT c.seq, c.head, e.id, e.account_id, e.party_id, e.action, e.outcome, e.created_at,"
    " e.seq, e.prev_digest, e.digest, e.actor, e.reason, e.request_id, e.trace_id"
    " FROM (SELECT :subject AS subject) AS s"
    " LEFT JOIN audit_chains AS c ON c.subject = s.subject"
    " LEFT JOIN audit_events AS e ON e.subject = s.subject ORDER BY e.seq"
)
# Subjects with a head or with events (a deleted head must not hide a chain),
# each side cut to the page first so neither table is read whole.
_SUBJECTS_AFTER = Sql(
    "SELECT subject FROM (SELECT subject FROM audit_chains WHERE subject > :after"
    " ORDER BY subject LIMIT :limit) AS c UNION SELECT subject FROM (SELECT DISTINCT subject"
    " FROM audit_events WHERE subject > :after ORDER BY subject LIMIT :limit) AS e"
    " ORDER BY subject LIMIT :limit"
)
_COUNT = Sql("SELECT count(*) FROM audit_chains")

# An event as stored: the event, the digest it links to, its own digest.
Link = tuple[AuditEvent, bytes | None, bytes]


class AuditLog(Repository):
    def append(self, entry: AuditEntry) -> str:
        bumped = self._db.one(_BUMP, {"subject": entry.subject})
        assert bumped is not None
        seq, prev = bumped[0], None if bumped[1] is None else bytes(bumped[1])
        event = AuditEvent(
            id=new_event_id(),
            account_id=entry.account_id,
            party_id=entry.party_id,
            action=entry.action,
            outcome=entry.outcome,
            created_at=entry.at,
            seq=seq,
            actor=entry.actor,
            reason=entry.reason,
            request_id=entry.request_id,
            trace_id=entry.trace_id,
        )
        digest = self._p.hasher.digest(AUDIT_PURPOSE, _canonical(event, prev))
        self._db.count(
            _INSERT,
            {
                "id": event.id,
                "subject": entry.subject,
                "account_id": entry.account_id,
                "party_id": entry.party_id,
                "actor": entry.actor,
                "action": entry.action,
                "outcome": entry.outcome,
                "created_at": self._t(entry.at),
                "seq": seq,
                "prev": prev,
                "digest": digest,
                "reason": entry.reason,
                "request_id": entry.request_id,
                "trace_id": entry.trace_id,
            },
        )
        return event.id

    def history(self, subject: Subject) -> list[AuditEvent]:
        return [event for event, _, _ in self._events(subject)]

    def check_chain(self, subject: Subject) -> ChainCheck:
        rows = self._db.all(_CHAIN, {"subject": subject})
        head_seq, head = rows[0][0] or 0, _blob(rows[0][1])
        links = [self._link(r[2:]) for r in rows if r[2] is not None]
        return ChainCheck(len(links), self._first_break(subject, links, head_seq, head))

    def subjects_after(self, after: Subject | None, limit: int) -> list[Subject]:
        rows = self._db.all(_SUBJECTS_AFTER, {"after": after or b"", "limit": limit})
        return [bytes(r[0]) for r in rows]

    def count_subjects(self) -> int:
        row = self._db.one(_COUNT, {})
        return 0 if row is None else int(row[0])

    def _first_break(
        self, subject: Subject, links: list[Link], head_seq: int, head: bytes | None
    ) -> BrokenLink | None:
        prev: bytes | None = None
        last: AuditEvent | None = None
        for expected, (event, prev_digest, digest) in enumerate(links, 1):
            if event.seq > expected:  # the one numbered `expected` is gone
                return BrokenLink(subject, expected, None, BreakKind.SEQUENCE_GAP)
            if event.seq < expected:  # numbered where no event can be
                return BrokenLink(subject, event.seq, event.id, BreakKind.SEQUENCE_GAP)
            if prev_digest != prev:
                return BrokenLink(subject, event.seq, event.id, BreakKind.PREVIOUS_MISMATCH)
            if not self._p.hasher.matches(digest, AUDIT_PURPOSE, _canonical(event, prev)):
                return BrokenLink(subject, event.seq, event.id, BreakKind.DIGEST_MISMATCH)
            prev, last = digest, event
        last_seq = 0 if last is None else last.seq
        if head_seq > last_seq:  # the head counts events that are gone
            return BrokenLink(subject, last_seq + 1, None, BreakKind.HEAD_MISMATCH)
        if head_seq != last_seq or head != prev:
            event_id = None if last is None else last.id
            return BrokenLink(subject, last_seq, event_id, BreakKind.HEAD_MISMATCH)
        return None

    def _events(self, subject: Subject) -> list[Link]:
        return [self._link(r) for r in self._db.all(_EVENTS, {"subject": subject})]

    def _link(self, r: Sequence[Any]) -> Link:
        event = AuditEvent(
            r[0], r[1], r[2], r[3], r[4], self._read_t(r[5]), r[6], r[9], r[10], r[11], r[12]
        )
        return event, _blob(r[7]), bytes(r[8])


def _blob(value: Any) -> bytes | None:
    return None if value is None else bytes(value)
