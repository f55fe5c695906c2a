"""Delivers committed outbox messages. Every worker runs one; a message is
claimed with a conditional UPDATE, so only one of them sends it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import partial

from eid_service.notify.senders import Sender
from eid_service.use_cases.ports import OutgoingMessage, Repositories, UnitOfWork

log = logging.getLogger("eid.outbox")

CLAIM_FOR = timedelta(seconds=30)
POLL_INTERVAL_SECONDS = 1.0
BATCH = 50


class OutboxDispatcher:
    def __init__(
        self, uow: UnitOfWork, senders: Sequence[Sender], clock: Callable[[], datetime]
    ) -> None:
        self._uow = uow
        self._senders = list(senders)
        self._clock = clock
        self._wakeup = asyncio.Event()

    @property
    def has_senders(self) -> bool:
        return bool(self._senders)

    def wake(self) -> None:
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        if not self._senders:
            # Nothing could deliver: leave messages in the outbox, not marked sent.
            log.warning("no message sender configured: messages wait in the outbox")
            await stop.wait()
            return
        while not stop.is_set():
            try:
                await self.deliver_pending()
            except Exception as error:  # keep delivering after a transient fault
                log.error("outbox pass failed: %s", type(error).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), POLL_INTERVAL_SECONDS)
            self._wakeup.clear()

    async def deliver_pending(self) -> int:
        """Sends what is due; returns how many messages this worker sent."""
        now = self._clock()
        ids = await self._uow.read(lambda r: r.outbox.pending_ids(now, BATCH))
        sent = 0
        for message_id in ids:
            # A fresh clock per claim: earlier slow sends must not shorten this one.
            claimed_at = self._clock()
            message = await self._uow.atomically(partial(_claim, message_id, claimed_at))
            if message is None:
                continue  # another worker has it
            try:
                for sender in self._senders:
                    await sender.send(message)
            except Exception as error:
                # Left claimed; it becomes due again when the claim lapses.
                log.warning("sending %s failed: %s", message_id, type(error).__name__)
                continue
            sent_at = self._clock()
            await self._uow.atomically(partial(_mark_sent, message_id, sent_at))
            sent += 1
        return sent


def _claim(message_id: str, now: datetime, r: Repositories) -> OutgoingMessage | None:
    return r.outbox.claim(message_id, now, now + CLAIM_FOR)


def _mark_sent(message_id: str, now: datetime, r: Repositories) -> None:
    r.outbox.mark_sent(message_id, now)
