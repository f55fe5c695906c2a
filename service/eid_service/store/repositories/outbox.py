"""Transactional outbox: messages commit with the change that caused them.

A dispatcher claims a message with one conditional UPDATE (so two workers
never send it twice), sends it, then erases its contents."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import ColumnElement, insert, or_, select, update

from eid_service.store.models import OutboxRow
from eid_service.store.repositories.base import Repository
from eid_service.use_cases.ports import OutgoingMessage


def _due(now: datetime) -> ColumnElement[bool]:
    return or_(OutboxRow.claimed_until.is_(None), OutboxRow.claimed_until < now)


class OutboxRepository(Repository):
    def add(self, channel: str, destination: str, body: str, now: datetime) -> str:
        message_id = "msg_" + secrets.token_hex(8)
        ctx = f"outbox:{message_id}"
        self._c.execute(
            insert(OutboxRow).values(
                id=message_id,
                channel=channel,
                destination_enc=self._p.seal(destination, f"{ctx}:destination"),
                body_enc=self._p.seal(body, f"{ctx}:body"),
                created_at=now,
                attempts=0,
            )
        )
        return message_id

    def pending_ids(self, now: datetime, limit: int) -> list[str]:
        rows = self._c.scalars(
            select(OutboxRow.id)
            .where(OutboxRow.sent_at.is_(None), _due(now))
            .order_by(OutboxRow.created_at)
            .limit(limit)
        )
        return list(rows)

    def claim(self, message_id: str, now: datetime, until: datetime) -> OutgoingMessage | None:
        row = self._c.execute(
            update(OutboxRow)
            .where(OutboxRow.id == message_id, OutboxRow.sent_at.is_(None), _due(now))
            .values(claimed_until=until, attempts=OutboxRow.attempts + 1)
            .returning(OutboxRow.channel, OutboxRow.destination_enc, OutboxRow.body_enc)
        ).first()
        if row is None or row[1] is None or row[2] is None:
            return None
        ctx = f"outbox:{message_id}"
        return OutgoingMessage(
            id=message_id,
            channel=row[0],
            destination=self._p.open(row[1], f"{ctx}:destination"),
            body=self._p.open(row[2], f"{ctx}:body"),
        )

    def mark_sent(self, message_id: str, now: datetime) -> None:
        # The body holds a one-time code: keep no copy once delivered.
        self._c.execute(
            update(OutboxRow)
            .where(OutboxRow.id == message_id)
            .values(sent_at=now, body_enc=None, destination_enc=None)
        )
