"""Append-only, tamper-evident access history.

Each subject's events (the person an ID number names) form a chain: an
event's digest is a keyed hash of its fields and the previous event's digest,
so editing or deleting one breaks every later link. The chain's head lives in
`audit_chains`: an append bumps it with one upsert that returns the previous
head (and, on PostgreSQL, locks it until commit, which orders concurrent
appends), so no event has to be read."""

from __future__ import annotations

import secrets

from sqlalchemy import insert, select, update

from eid_service.store.models import AuditChainRow, AuditEventRow
from eid_service.store.repositories.base import Repository
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
    )


class AuditLog(Repository):
    def append(self, entry: AuditEntry) -> str:
        bump = self._upsert(AuditChainRow).values(subject=entry.subject, seq=1, head=None)
        bump = bump.on_conflict_do_update(
            index_elements=[AuditChainRow.subject], set_={"seq": AuditChainRow.seq + 1}
        ).returning(AuditChainRow.seq, AuditChainRow.head)
        seq, prev = self._c.execute(bump).one()
        event = AuditEvent(
            id="evt_" + secrets.token_hex(10),
            account_id=entry.account_id,
            party_id=entry.party_id,
            action=entry.action,
            outcome=entry.outcome,
            created_at=entry.at,
            seq=seq,
        )
        digest = self._p.hasher.digest(AUDIT_PURPOSE, _canonical(event, prev))
        self._c.execute(
            insert(AuditEventRow).values(
                id=event.id,
                subject=entry.subject,
                account_id=entry.account_id,
                party_id=entry.party_id,
                action=entry.action,
                outcome=entry.outcome,
                created_at=entry.at,
                seq=seq,
                prev_digest=prev,
                digest=digest,
            )
        )
        self._c.execute(
            update(AuditChainRow).where(AuditChainRow.subject == entry.subject).values(head=digest)
        )
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
        head = self._c.scalar(select(AuditChainRow.head).where(AuditChainRow.subject == subject))
        return head == prev

    def _events(self, subject: Subject) -> list[tuple[AuditEvent, bytes | None, bytes]]:
        rows = self._c.execute(
            select(AuditEventRow)
            .where(AuditEventRow.subject == subject)
            .order_by(AuditEventRow.seq)
        ).mappings()
        return [
            (
                AuditEvent(
                    r["id"],
                    r["account_id"],
                    r["party_id"],
                    r["action"],
                    r["outcome"],
                    r["created_at"],
                    r["seq"],
                ),
                r["prev_digest"],
                r["digest"],
            )
            for r in rows
        ]
