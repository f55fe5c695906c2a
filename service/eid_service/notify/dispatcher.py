"""Delivers committed outbox messages. Every worker runs one; a message is
claimed with a conditional UPDATE, so only one of them sends it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from eid_service.notify.senders import Sender
from eid_service.store.uow import UnitOfWork

log = logging.getLogger("eid.outbox")

CLAIM_FOR = timedelta(seconds=30)
POLL_INTERVAL_SECONDS = 1.0
BATCH = 50


class OutboxDispatcher:
    def __init__(
        self,
        new_uow: Callable[[], UnitOfWork],
        senders: Sequence[Sender],
        clock: Callable[[], datetime],
    ) -> None:
        self._new_uow = new_uow
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
        async with self._new_uow() as uow:
            ids = await uow.outbox.pending_ids(now, BATCH)
        sent = 0
        for message_id in ids:
            async with self._new_uow() as uow:
                await uow.start_writing()
                # A fresh clock per claim: earlier slow sends must not shorten this one.
                claimed_at = self._clock()
                message = await uow.outbox.claim(message_id, claimed_at, claimed_at + CLAIM_FOR)
                await uow.commit()
            if message is None:
                continue  # another worker has it
            try:
                for sender in self._senders:
                    await sender.send(message)
            except Exception as error:
                # Left claimed; it becomes due again when the claim lapses.
                log.warning("sending %s failed: %s", message_id, type(error).__name__)
                continue
            async with self._new_uow() as uow:
                await uow.start_writing()
                await uow.outbox.mark_sent(message_id, self._clock())
                await uow.commit()
            sent += 1
        return sent
