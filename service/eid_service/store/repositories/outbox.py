"""Transactional outbox: messages commit with the change that caused them.

A dispatcher claims a message with one conditional UPDATE (so two workers
never send it twice), sends it, then erases its contents."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from eid_service.store.models import OutboxRow
from eid_service.store.protection import DataProtection


@dataclass(frozen=True)
class OutgoingMessage:
    id: str
    channel: str
    destination: str = field(repr=False)
    body: str = field(repr=False)


class OutboxRepository:
    def __init__(self, session: AsyncSession, protection: DataProtection) -> None:
        self._s = session
        self._p = protection

    async def add(self, channel: str, destination: str, body: str, now: datetime) -> str:
        message_id = "msg_" + secrets.token_hex(8)
        ctx = f"outbox:{message_id}"
        self._s.add(
            OutboxRow(
                id=message_id,
                channel=channel,
                destination_enc=self._p.seal(destination, f"{ctx}:destination"),
                body_enc=self._p.seal(body, f"{ctx}:body"),
                created_at=now,
                attempts=0,
            )
        )
        await self._s.flush()
        return message_id

    async def pending_ids(self, now: datetime, limit: int) -> list[str]:
        rows = await self._s.scalars(
            select(OutboxRow.id)
            .where(
                OutboxRow.sent_at.is_(None),
                or_(OutboxRow.claimed_until.is_(None), OutboxRow.claimed_until < now),
            )
            .order_by(OutboxRow.created_at)
            .limit(limit)
        )
        return list(rows)

    async def claim(
        self, message_id: str, now: datetime, until: datetime
    ) -> OutgoingMessage | None:
        result = await self._s.execute(
            update(OutboxRow)
            .where(
                OutboxRow.id == message_id,
                OutboxRow.sent_at.is_(None),
                or_(OutboxRow.claimed_until.is_(None), OutboxRow.claimed_until < now),
            )
            .values(claimed_until=until, attempts=OutboxRow.attempts + 1)
        )
        assert isinstance(result, CursorResult)
        if result.rowcount != 1:
            return None
        row = await self._s.get(OutboxRow, message_id)
        assert row is not None and row.destination_enc is not None and row.body_enc is not None
        ctx = f"outbox:{message_id}"
        return OutgoingMessage(
            id=message_id,
            channel=row.channel,
            destination=self._p.open(row.destination_enc, f"{ctx}:destination"),
            body=self._p.open(row.body_enc, f"{ctx}:body"),
        )

    async def mark_sent(self, message_id: str, now: datetime) -> None:
        # The body holds a one-time code: keep no copy once delivered.
        await self._s.execute(
            update(OutboxRow)
            .where(OutboxRow.id == message_id)
            .values(sent_at=now, body_enc=None, destination_enc=None)
        )
