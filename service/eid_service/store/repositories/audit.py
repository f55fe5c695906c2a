"""Append-only, tamper-evident access history.

Each subject's events (the person an ID number names) form a chain: an
event's digest is a keyed hash of its fields and the previous event's digest,
so editing or deleting one breaks every later link. The chain's head lives in
`audit_chains`: an append bumps it with one upsert that returns the previous
head (and, on PostgreSQL, locks it until commit, which orders concurrent
appends), so no event has to be read."""

from __future__ import annotations

import secrets

from eid_service.store.repositories.base import Repository
from eid_service.store.sql import Sql
from eid_service.use_cases.ports import AuditEntry, AuditEvent, Subject

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
        # Events from before actors existed keep the digest they were given.
        + ([f"actor={e.actor}"] if e.actor else [])
    )


_BUMP = Sql(
    "INSERT INTO audit_chains (subject, seq, head) VALUES (:subject, 1, NULL)"
    " ON CONFLICT (subject) DO UPDATE SET seq = audit_chains.seq + 1 RETURNING seq, head"
)
_INSERT = Sql(
    "INSERT INTO audit_events (id, subject, account_id, party_id, actor, action, outcome,"
    " created_at, seq, prev_digest, digest) VALUES (:id, :subject, :account_id, :party_id,"
    " :actor, :action, :outcome, :created_at, :seq, :prev, :digest)"
)
_SET_HEAD = Sql("UPDATE audit_chains SET head = :head WHERE subject = :subject")
_EVENTS = Sql(
    "SELECT id, account_id, party_id, action, outcome, created_at, seq, prev_digest, digest,"
    " actor FROM audit_events WHERE subject = :subject ORDER BY seq"
)
_HEAD = Sql("SELECT head FROM audit_chains WHERE subject = :subject")


class AuditLog(Repository):
    def append(self, entry: AuditEntry) -> str:
        bumped = self._db.one(_BUMP, {"subject": entry.subject})
        assert bumped is not None
        seq, prev = bumped[0], None if bumped[1] is None else bytes(bumped[1])
        event = AuditEvent(
            id="evt_" + secrets.token_hex(10),
            account_id=entry.account_id,
            party_id=entry.party_id,
            action=entry.action,
            outcome=entry.outcome,
            created_at=entry.at,
            seq=seq,
            actor=entry.actor,
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
            },
        )
        self._db.count(_SET_HEAD, {"head": digest, "subject": entry.subject})
        return event.id

    def history(self, subject: Subject) -> list[AuditEvent]:
        return [event for event, _, _ in self._events(subject)]

    def chain_intact(self, subject: Subject) -> bool:
        """True when every event still links to its predecessor and the head
        names the last one."""
        prev: bytes | None = None
        for expected_seq, (event, prev_digest, digest) in enumerate(self._events(subject), 1):
            if event.seq != expected_seq or prev_digest != prev:
                return False
            if not self._p.hasher.matches(digest, AUDIT_PURPOSE, _canonical(event, prev)):
                return False
            prev = digest
        head = self._db.one(_HEAD, {"subject": subject})
        return head is not None and (None if head[0] is None else bytes(head[0])) == prev

    def _events(self, subject: Subject) -> list[tuple[AuditEvent, bytes | None, bytes]]:
        return [
            (
                AuditEvent(r[0], r[1], r[2], r[3], r[4], self._read_t(r[5]), r[6], r[9]),
                None if r[7] is None else bytes(r[7]),
                bytes(r[8]),
            )
            for r in self._db.all(_EVENTS, {"subject": subject})
        ]
