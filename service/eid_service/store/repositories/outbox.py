"""Transactional outbox: messages commit with the change that caused them.

Each message gets one delivery row per sender of its channel (`route`); a
dispatcher claims a delivery with one conditional UPDATE (so two workers
never send it at once), sends it, then records the outcome on that row
alone. Contents (destination and text, sealed) are erased when the message
settles: once no delivery is pending, unless a delivery is dead and the
message carries no one-time code (then they stay for `retry_dead`). A dead
one-time code is erased at once: by the time an operator retries, the code
has expired, and the citizen asks for a new one."""

from __future__ import annotations

import functools
import json
import secrets
from collections.abc import Sequence
from datetime import datetime

from eid_service.domain.notices import Notice, NoticeKind
from eid_service.store.repositories.base import Repository
from eid_service.store.sql import Sql
from eid_service.use_cases.ports import (
    ClaimedDelivery,
    DeadLetter,
    DueDelivery,
    OutgoingMessage,
    RetryOutcome,
)

PENDING, SENT, DEAD = "pending", "sent", "dead"
CODE_KINDS = frozenset({NoticeKind.ACTIVATION_CODE, NoticeKind.LOCK_CODE, NoticeKind.UNLOCK_CODE})
CONTENTS_ERASED = "ContentsErased"
CLAIM_LAPSED = "ClaimLapsed"

_INSERT = Sql(
    "INSERT INTO outbox (id, channel, kind, destination_enc, body_enc, created_at, party_id)"
    " VALUES (:id, :channel, :kind, :destination, :body, :created_at, :party_id)"
)
# `_INSERT`'s statement, inserting no row.
_REHEARSE = Sql(
    "INSERT INTO outbox (id, channel, kind, destination_enc, body_enc, created_at, party_id)"
    " SELECT :id, :channel, :kind, :destination, :body, :created_at, :party_id WHERE 1 = 0"
)
_UNROUTED = Sql(
    "SELECT id FROM outbox WHERE sent_at IS NULL AND routed_at IS NULL AND channel = :channel"
    " ORDER BY created_at LIMIT :limit"
)
_MARK_ROUTED = Sql(
    "UPDATE outbox SET routed_at = :now WHERE id = :id AND routed_at IS NULL AND sent_at IS NULL"
)
_ADD_DELIVERY = Sql(
    "INSERT INTO outbox_deliveries (message_id, sender, state, attempts, next_attempt_at)"
    " VALUES (:id, :sender, :pending, 0, :now)"
)
_DUE = (
    "SELECT d.message_id, o.party_id FROM outbox_deliveries d JOIN outbox o ON o.id = d.message_id"
    " WHERE d.state = :pending AND d.sender = :sender AND d.next_attempt_at <= :now"
    " AND d.attempts < :max{busy} ORDER BY d.next_attempt_at LIMIT :limit"
)
# The claim and the attempt count are one statement: a worker that dies
# mid-send has still spent the attempt, so a message that kills its sender
# cannot be retried for ever.
_CLAIM = Sql(
    "UPDATE outbox_deliveries SET attempts = attempts + 1, next_attempt_at = :until,"
    " last_attempt_at = :now WHERE message_id = :id AND sender = :sender AND state = :pending"
    " AND next_attempt_at <= :now AND attempts < :max RETURNING attempts"
)
_CONTENTS = Sql("SELECT channel, kind, destination_enc, body_enc FROM outbox WHERE id = :id")
# Taken first by every transaction that may settle a message: on PostgreSQL
# two workers finishing two deliveries of one message queue here, so the
# second sees the first's outcome (else neither would see the message done).
_LOCK_MESSAGE = Sql("UPDATE outbox SET routed_at = routed_at WHERE id = :id")
_SENT = Sql(
    "UPDATE outbox_deliveries SET state = :sent, sent_at = :now, last_error = NULL"
    " WHERE message_id = :id AND sender = :sender AND state = :pending"
)
# A claim is named by its two times: no other worker's claim has both.
_GIVE_BACK = Sql(
    "UPDATE outbox_deliveries SET attempts = attempts - 1, next_attempt_at = :claimed_at"
    " WHERE message_id = :id AND sender = :sender AND state = :pending"
    " AND next_attempt_at = :until AND last_attempt_at = :claimed_at"
)
_LATER = Sql(
    "UPDATE outbox_deliveries SET next_attempt_at = :at, last_error = :error"
    " WHERE message_id = :id AND sender = :sender AND state = :pending"
)
_DEAD = Sql(
    "UPDATE outbox_deliveries SET state = :dead, last_error = :error"
    " WHERE message_id = :id AND sender = :sender AND state = :pending"
)
_EXHAUSTED = Sql(
    "SELECT message_id FROM outbox_deliveries WHERE state = :pending AND sender = :sender"
    " AND next_attempt_at <= :now AND attempts >= :max ORDER BY message_id LIMIT :limit"
)
_SETTLEMENT = Sql(
    "SELECT kind,"
    " (SELECT COUNT(*) FROM outbox_deliveries d WHERE d.message_id = :id AND d.state = :pending),"
    " (SELECT COUNT(*) FROM outbox_deliveries d WHERE d.message_id = :id AND d.state = :dead)"
    " FROM outbox WHERE id = :id AND sent_at IS NULL"
)
_SETTLE = Sql("UPDATE outbox SET sent_at = :now WHERE id = :id")
_ERASE = Sql("UPDATE outbox SET destination_enc = NULL, body_enc = NULL WHERE id = :id")
_DEAD_LETTERS = Sql(
    "SELECT d.message_id, o.kind, o.channel, d.sender, d.attempts, d.last_error,"
    " o.created_at, d.last_attempt_at, o.body_enc IS NOT NULL"
    " FROM outbox_deliveries d JOIN outbox o ON o.id = d.message_id WHERE d.state = :dead"
    " ORDER BY o.created_at, d.message_id, d.sender LIMIT :limit"
)
_RETRY_STATE = Sql(
    "SELECT body_enc IS NOT NULL,"
    " (SELECT COUNT(*) FROM outbox_deliveries d WHERE d.message_id = :id AND d.state = :dead)"
    " FROM outbox WHERE id = :id"
)
_REVIVE = Sql(
    "UPDATE outbox_deliveries SET state = :pending, attempts = 0, next_attempt_at = :now,"
    " last_error = NULL WHERE message_id = :id AND state = :dead"
)
_UNSETTLE = Sql("UPDATE outbox SET sent_at = NULL WHERE id = :id")
# A message no sender was ever configured for (its channel has none): after
# a while its contents go and it is settled, so a sender added later does not
# send a stale code.
_STALE_UNROUTED = (
    "SELECT id FROM outbox WHERE routed_at IS NULL AND sent_at IS NULL"
    " AND created_at < :before ORDER BY id LIMIT :limit"
)
_ERASE_UNROUTED = Sql(
    "UPDATE outbox SET destination_enc = NULL, body_enc = NULL, sent_at = :now"  # noqa: S608
    f" WHERE id IN ({_STALE_UNROUTED})"
)
# Messages whose contents are gone (settled, or dead codes) are forgotten,
# deliveries first.
_ERASED = (
    "SELECT id FROM outbox WHERE body_enc IS NULL AND created_at < :before ORDER BY id LIMIT :limit"
)
_PURGE_DELIVERIES = Sql(
    f"DELETE FROM outbox_deliveries WHERE message_id IN ({_ERASED})"  # noqa: S608 (constants)
)
_PURGE_MESSAGES = Sql(f"DELETE FROM outbox WHERE id IN ({_ERASED})")  # noqa: S608 (constants)


@functools.cache
def _due(busy: int) -> Sql:
    """`_DUE` leaving out `busy` parties' deliveries (:busy0, :busy1...)."""
    if not busy:
        return Sql(_DUE.format(busy=""))
    names = ", ".join(f":busy{i}" for i in range(busy))
    return Sql(_DUE.format(busy=f" AND (o.party_id IS NULL OR o.party_id NOT IN ({names}))"))


class OutboxRepository(Repository):
    def add(
        self,
        channel: str,
        destination: str,
        notice: Notice,
        now: datetime,
        party_id: str | None = None,
    ) -> str:
        return self._insert(_INSERT, channel, destination, notice, now, party_id)

    def rehearse(self, channel: str, destination: str, notice: Notice, now: datetime) -> None:
        self._insert(_REHEARSE, channel, destination, notice, now, None)

    def _insert(
        self,
        sql: Sql,
        channel: str,
        destination: str,
        notice: Notice,
        now: datetime,
        party_id: str | None,
    ) -> str:
        message_id = "msg_" + secrets.token_hex(8)
        ctx = f"outbox:{message_id}"
        text = json.dumps({"subject": notice.subject, "body": notice.body}, ensure_ascii=False)
        self._db.count(
            sql,
            {
                "id": message_id,
                "channel": channel,
                "kind": notice.kind.value,
                "destination": self._p.seal(destination, f"{ctx}:destination"),
                "body": self._p.seal(text, f"{ctx}:body"),
                "created_at": self._t(now),
                "party_id": party_id,
            },
        )
        return message_id

    def unrouted_ids(self, channel: str, limit: int) -> list[str]:
        return [r[0] for r in self._db.all(_UNROUTED, {"channel": channel, "limit": limit})]

    def route(self, message_id: str, senders: Sequence[str], now: datetime) -> bool:
        if not senders or not self._db.count(_MARK_ROUTED, {"id": message_id, "now": self._t(now)}):
            return False
        for sender in senders:
            self._db.count(
                _ADD_DELIVERY,
                {"id": message_id, "sender": sender, "pending": PENDING, "now": self._t(now)},
            )
        return True

    def due(
        self,
        sender: str,
        now: datetime,
        max_attempts: int,
        limit: int,
        busy_parties: Sequence[str] = (),
    ) -> list[DueDelivery]:
        params = {
            "pending": PENDING,
            "sender": sender,
            "now": self._t(now),
            "max": max_attempts,
            "limit": limit,
            **{f"busy{i}": party for i, party in enumerate(busy_parties)},
        }
        rows = self._db.all(_due(len(busy_parties)), params)
        return [DueDelivery(r[0], r[1]) for r in rows]

    def claim(
        self, message_id: str, sender: str, now: datetime, until: datetime, max_attempts: int
    ) -> ClaimedDelivery | None:
        claimed = self._db.one(
            _CLAIM,
            {
                "id": message_id,
                "sender": sender,
                "pending": PENDING,
                "now": self._t(now),
                "until": self._t(until),
                "max": max_attempts,
            },
        )
        if claimed is None:
            return None
        row = self._db.one(_CONTENTS, {"id": message_id})
        if row is None or row[1] is None or row[2] is None or row[3] is None:
            # Nothing left to send (erased by hand, or a pre-0005 row).
            self.mark_dead(message_id, sender, now, CONTENTS_ERASED)
            return None
        ctx = f"outbox:{message_id}"
        text = json.loads(self._p.open(bytes(row[3]), f"{ctx}:body"))
        message = OutgoingMessage(
            id=message_id,
            channel=row[0],
            kind=NoticeKind(row[1]),
            destination=self._p.open(bytes(row[2]), f"{ctx}:destination"),
            subject=text["subject"],
            body=text["body"],
        )
        return ClaimedDelivery(message, sender, int(claimed[0]))

    def mark_sent(self, message_id: str, sender: str, now: datetime) -> None:
        self._db.count(_LOCK_MESSAGE, {"id": message_id})
        params = {"id": message_id, "sender": sender, "sent": SENT, "pending": PENDING}
        if self._db.count(_SENT, {**params, "now": self._t(now)}):
            self._settle(message_id, now)

    def give_back(
        self, message_id: str, sender: str, claimed_at: datetime, until: datetime
    ) -> bool:
        params = {
            "id": message_id,
            "sender": sender,
            "pending": PENDING,
            "claimed_at": self._t(claimed_at),
            "until": self._t(until),
        }
        return self._db.count(_GIVE_BACK, params) == 1

    def retry_later(self, message_id: str, sender: str, at: datetime, error: str) -> None:
        self._db.count(
            _LATER,
            {
                "id": message_id,
                "sender": sender,
                "pending": PENDING,
                "at": self._t(at),
                "error": error,
            },
        )

    def mark_dead(self, message_id: str, sender: str, now: datetime, error: str) -> None:
        self._db.count(_LOCK_MESSAGE, {"id": message_id})
        params = {
            "id": message_id,
            "sender": sender,
            "dead": DEAD,
            "pending": PENDING,
            "error": error,
        }
        if self._db.count(_DEAD, params):
            self._settle(message_id, now)

    def bury_exhausted(self, sender: str, now: datetime, max_attempts: int) -> int:
        params = {
            "pending": PENDING,
            "sender": sender,
            "now": self._t(now),
            "max": max_attempts,
            "limit": 100,
        }
        ids = [r[0] for r in self._db.all(_EXHAUSTED, params)]
        for message_id in ids:
            self.mark_dead(message_id, sender, now, CLAIM_LAPSED)
        return len(ids)

    def _settle(self, message_id: str, now: datetime) -> None:
        row = self._db.one(_SETTLEMENT, {"id": message_id, "pending": PENDING, "dead": DEAD})
        if row is None or row[1] > 0:
            return
        self._db.count(_SETTLE, {"id": message_id, "now": self._t(now)})
        keep_for_retry = row[2] > 0 and _kind(row[0]) not in (*CODE_KINDS, None)
        if not keep_for_retry:
            self._db.count(_ERASE, {"id": message_id})

    def erase_unrouted(self, before: datetime, now: datetime, limit: int) -> int:
        params = {"before": self._t(before), "now": self._t(now), "limit": limit}
        return self._db.count(_ERASE_UNROUTED, params)

    def purge_erased(self, before: datetime, limit: int) -> int:
        params = {"before": self._t(before), "limit": limit}
        self._db.count(_PURGE_DELIVERIES, params)
        return self._db.count(_PURGE_MESSAGES, params)

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        rows = self._db.all(_DEAD_LETTERS, {"dead": DEAD, "limit": limit})
        return [
            DeadLetter(
                message_id=r[0],
                kind=_kind(r[1]),
                channel=r[2],
                sender=r[3],
                attempts=int(r[4]),
                last_error=r[5],
                created_at=self._read_t(r[6]),
                last_attempt_at=None if r[7] is None else self._read_t(r[7]),
                retriable=bool(r[8]),
            )
            for r in rows
        ]

    def retry_dead(self, message_id: str, now: datetime) -> RetryOutcome:
        self._db.count(_LOCK_MESSAGE, {"id": message_id})
        state = self._db.one(_RETRY_STATE, {"id": message_id, "dead": DEAD})
        if state is None or state[1] == 0:
            return RetryOutcome.NOT_DEAD
        if not state[0]:
            return RetryOutcome.ERASED
        params = {"id": message_id, "pending": PENDING, "dead": DEAD, "now": self._t(now)}
        self._db.count(_REVIVE, params)
        self._db.count(_UNSETTLE, {"id": message_id})
        return RetryOutcome.RETRIED


def _kind(value: str | None) -> NoticeKind | None:
    """Messages written before kinds were stored (0005) have none."""
    return None if value is None else NoticeKind(value)
