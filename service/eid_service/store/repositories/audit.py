"""Append-only, tamper-evident access history.

Each account's events form a chain: an event's digest is a keyed hash of its
fields and the previous event's digest, so editing or deleting one breaks
every later link. Appends for one account are serialised by locking the
account row (PostgreSQL) or by SQLite's single writer."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from eid_service.store.models import AccountRow, AuditEventRow
from eid_service.store.protection import DataProtection

AUDIT_PURPOSE = "audit"


@dataclass(frozen=True)
class AuditEvent:
    id: str
    account_id: str | None
    party_id: str | None
    action: str
    outcome: str
    created_at: datetime
    seq: int


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


class AuditLog:
    def __init__(self, session: AsyncSession, protection: DataProtection) -> None:
        self._s = session
        self._p = protection

    async def append(
        self,
        *,
        account_id: str | None,
        party_id: str | None,
        action: str,
        outcome: str,
        now: datetime,
    ) -> str:
        prev_seq, prev_digest = 0, None
        if account_id is not None:
            await self._s.execute(
                select(AccountRow.id).where(AccountRow.id == account_id).with_for_update()
            )
            last = (
                await self._s.execute(
                    select(AuditEventRow.seq, AuditEventRow.digest)
                    .where(AuditEventRow.account_id == account_id)
                    .order_by(AuditEventRow.seq.desc())
                    .limit(1)
                )
            ).first()
            if last is not None:
                prev_seq, prev_digest = last[0], last[1]
        event = AuditEvent(
            id="evt_" + secrets.token_hex(10),
            account_id=account_id,
            party_id=party_id,
            action=action,
            outcome=outcome,
            created_at=now,
            seq=prev_seq + 1,
        )
        digest = self._p.hasher.digest(AUDIT_PURPOSE, _canonical(event, prev_digest))
        self._s.add(
            AuditEventRow(
                id=event.id,
                account_id=account_id,
                party_id=party_id,
                action=action,
                outcome=outcome,
                created_at=now,
                seq=event.seq,
                prev_digest=prev_digest,
                digest=digest,
            )
        )
        await self._s.flush()
        return event.id

    async def history(self, account_id: str) -> list[AuditEvent]:
        rows = await self._s.scalars(
            select(AuditEventRow)
            .where(AuditEventRow.account_id == account_id)
            .order_by(AuditEventRow.seq)
        )
        return [
            AuditEvent(r.id, r.account_id, r.party_id, r.action, r.outcome, r.created_at, r.seq)
            for r in rows
        ]

    async def chain_intact(self, account_id: str) -> bool:
        """True when every event of the account still links to its predecessor."""
        rows = await self._s.scalars(
            select(AuditEventRow)
            .where(AuditEventRow.account_id == account_id)
            .order_by(AuditEventRow.seq)
        )
        prev: bytes | None = None
        for expected_seq, r in enumerate(rows, start=1):
            event = AuditEvent(
                r.id, r.account_id, r.party_id, r.action, r.outcome, r.created_at, r.seq
            )
            if r.seq != expected_seq or r.prev_digest != prev:
                return False
            if not self._p.hasher.matches(r.digest, AUDIT_PURPOSE, _canonical(event, prev)):
                return False
            prev = r.digest
        return True
