"""Transactional outbox: messages commit with the change that caused them.

A dispatcher claims a message with one conditional UPDATE (so two workers
never send it twice), sends it, then erases its contents."""

from __future__ import annotations

import json
import secrets
from datetime import datetime

from eid_service.domain.notices import Notice, NoticeKind

from eid_service.store.repositories.base import Repository
from eid_service.store.sql import Sql
from eid_service.use_cases.ports import OutgoingMessage

_INSERT = Sql(
    "INSERT INTO outbox (id, channel, kind, destination_enc, body_enc, created_at, attempts)"
    " VALUES (:id, :channel, :kind, :destination, :body, :created_at, 0)"
)
_DUE = "sent_at IS NULL AND (claimed_until IS NULL OR claimed_until < :now)"
_PENDING = Sql(
    f"SELECT id FROM outbox WHERE {_DUE} ORDER BY created_at LIMIT :limit"  # noqa: S608 (constants)
)
_CLAIM = Sql(
    "UPDATE outbox SET claimed_until = :until, attempts = attempts + 1 WHERE id = :id"
    " AND sent_at IS NULL AND (claimed_until IS NULL OR claimed_until < :now)"
    " RETURNING channel, kind, destination_enc, body_enc"
)
# The body holds a one-time code: keep no copy once delivered.
_SENT = Sql(
    "UPDATE outbox SET sent_at = :now, body_enc = NULL, destination_enc = NULL WHERE id = :id"
)


class OutboxRepository(Repository):
    def add(self, channel: str, destination: str, notice: Notice, now: datetime) -> str:
        message_id = "msg_" + secrets.token_hex(8)
        ctx = f"outbox:{message_id}"
        text = json.dumps({"subject": notice.subject, "body": notice.body}, ensure_ascii=False)
        self._db.count(
            _INSERT,
            {
                "id": message_id,
                "channel": channel,
                "kind": notice.kind.value,
                "destination": self._p.seal(destination, f"{ctx}:destination"),
                "body": self._p.seal(text, f"{ctx}:body"),
                "created_at": self._t(now),
            },
        )
        return message_id

    def pending_ids(self, now: datetime, limit: int) -> list[str]:
        return [r[0] for r in self._db.all(_PENDING, {"now": self._t(now), "limit": limit})]

    def claim(self, message_id: str, now: datetime, until: datetime) -> OutgoingMessage | None:
        row = self._db.one(_CLAIM, {"id": message_id, "now": self._t(now), "until": self._t(until)})
        if row is None or row[1] is None or row[2] is None or row[3] is None:
            return None
        ctx = f"outbox:{message_id}"
        text = json.loads(self._p.open(bytes(row[3]), f"{ctx}:body"))
        return OutgoingMessage(
            id=message_id,
            channel=row[0],
            kind=NoticeKind(row[1]),
            destination=self._p.open(bytes(row[2]), f"{ctx}:destination"),
            subject=text["subject"],
            body=text["body"],
        )

    def mark_sent(self, message_id: str, now: datetime) -> None:
        self._db.count(_SENT, {"id": message_id, "now": self._t(now)})
