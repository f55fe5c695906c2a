"""Delivers committed outbox messages. Every worker runs one.

A message gets one delivery per sender of its channel; each delivery is
claimed with a conditional UPDATE (so one worker at a time sends it), sent
with no transaction open, and its outcome recorded on that delivery alone:
one failing sender never makes another resend. A failure is retried with
backoff until the attempts run out, then the delivery is dead (listed and
retried by `eid-server outbox`). A crash between sending and recording can
send again once the claim lapses: every send carries the message id as its
idempotency key, so the receiving side can drop the duplicate."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar

from eid_service.logs import traceback_fields
from eid_service.notify.backoff import retry_delay
from eid_service.notify.failures import DeliveryFailed, Undeliverable, describe
from eid_service.notify.senders import ROUTED_CHANNELS, Route, Sender, routes_of
from eid_service.notify.settings import DeliverySettings
from eid_service.use_cases.ports import ClaimedDelivery, Repositories, UnitOfWork

log = logging.getLogger("eid.outbox")

T = TypeVar("T")

POLL_INTERVAL_SECONDS = 1.0
BATCH = 50
# Deliveries in flight per sender per worker.
CONCURRENCY = 8


class OutboxDispatcher:
    def __init__(
        self,
        uow: UnitOfWork,
        senders: Sequence[Sender | Route],
        clock: Callable[[], datetime],
        settings: DeliverySettings | None = None,
    ) -> None:
        self._uow = uow
        self._routes = routes_of(senders)
        self._clock = clock
        self._s = settings or DeliverySettings()
        self._wakeup = asyncio.Event()
        # Claims whose commit this worker never heard back about (the store
        # went away as it committed): given back at the next pass, so the
        # message goes out when the store is back, not when the claim lapses.
        self._unheard: dict[tuple[str, str], tuple[datetime, datetime]] = {}
        # Each route's deliveries in progress, while serving (`run`).
        self._sending: dict[str, asyncio.Task[int | None]] = {}

    @property
    def has_senders(self) -> bool:
        return bool(self._routes)

    @property
    def routes(self) -> list[Route]:
        return list(self._routes)

    def wake(self) -> None:
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        served = {c for r in self._routes for c in r.channels}
        for channel in sorted(ROUTED_CHANNELS - served):
            # Nothing could deliver them: the purge erases them after a day, unsent.
            log.warning("no sender for %s: those messages are erased unsent after a day", channel)
        if not self._routes:
            await stop.wait()
            return
        # A stop wakes the poll at once, not at its next interval (a drain
        # would otherwise wait up to POLL_INTERVAL_SECONDS for it).
        stop_watch = asyncio.create_task(self._wake_when(stop))
        try:
            while not stop.is_set():
                await self._logged(self._serve_pass())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), POLL_INTERVAL_SECONDS)
                self._wakeup.clear()
        finally:
            stop_watch.cancel()
            sending = [task for task in self._sending.values() if not task.done()]
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                for cut in sending:
                    cut.cancel()
            # A stop lets what is being sent end (each send is bounded).
            await asyncio.gather(*sending, return_exceptions=True)

    async def _serve_pass(self) -> None:
        """Routes new messages, then starts each route's due deliveries unless
        that route is still sending earlier ones: a slow route (a party's
        receiver answering a byte at a time) holds up only itself, not the
        activation codes and notices of everyone else (found by an
        attacker's pass: an SMS 89 s late behind one party's webhook)."""
        await self._give_back_unheard()
        await self._route_new()
        for route in self._routes:
            sending = self._sending.get(route.name)
            if sending is None or sending.done():
                self._sending[route.name] = asyncio.create_task(
                    self._logged(self._deliver_due(route)), name=f"outbox-{route.name}"
                )

    @staticmethod
    async def _logged(work: Awaitable[T]) -> T | None:
        try:
            return await work
        except Exception as error:  # keep delivering after a transient fault
            # Frames and types only: a message may quote an address or a code.
            log.error("outbox pass failed: %s", type(error).__name__, extra=traceback_fields(error))
            return None

    async def _wake_when(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._wakeup.set()

    async def deliver_pending(self) -> int:
        """One pass: routes new messages, then sends every due delivery;
        returns how many deliveries this worker completed."""
        await self._give_back_unheard()
        await self._route_new()
        done = await asyncio.gather(*(self._deliver_due(route) for route in self._routes))
        return sum(done)

    async def close(self) -> None:
        for route in self._routes:
            aclose = getattr(route.sender, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _give_back_unheard(self) -> None:
        for (message_id, sender), (claimed_at, until) in list(self._unheard.items()):
            await self._uow.atomically(partial(_give_back, message_id, sender, claimed_at, until))
            del self._unheard[message_id, sender]

    async def _route_new(self) -> None:
        for channel in sorted(ROUTED_CHANNELS):
            names = [r.name for r in self._routes if channel in r.channels]
            if not names:
                continue
            ids = await self._uow.read(partial(_unrouted, channel))
            if ids:
                await self._uow.atomically(partial(_route, ids, names, self._clock()), long=True)

    def _settings(self, route: Route) -> DeliverySettings:
        return route.delivery or self._s

    async def _deliver_due(self, route: Route) -> int:
        now = self._clock()
        limit = self._settings(route).max_attempts
        buried = await self._uow.atomically(partial(_bury, route.name, now, limit), long=True)
        if buried:
            log.warning("%d deliveries via %s dead: out of attempts", buried, route.name)
        ids = await self._uow.read(partial(_due, route.name, now, limit))
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(message_id: str) -> bool:
            async with gate:
                return await self._deliver(route, message_id)

        return sum(await asyncio.gather(*(one(i) for i in ids)))

    async def _deliver(self, route: Route, message_id: str) -> bool:
        s = self._settings(route)
        # A fresh clock per claim: earlier slow sends must not shorten this one.
        claimed_at = self._clock()
        until = claimed_at + s.claim_for
        claim = partial(_claim, message_id, route.name, claimed_at, until, s.max_attempts)
        try:
            delivery = await self._uow.atomically(claim)
        except Exception:
            self._unheard[message_id, route.name] = (claimed_at, until)
            raise
        if delivery is None:
            return False  # another worker has it, or it is done
        try:
            # Bounded well inside the claim, so no other worker can take it meanwhile.
            async with asyncio.timeout(s.send_timeout_seconds):
                await route.sender.send(delivery.message)
        except Exception as error:
            await self._failed(s, delivery, error)
            return False
        await self._uow.atomically(partial(_sent, message_id, route.name, self._clock()))
        return True

    async def _failed(
        self, s: DeliverySettings, delivery: ClaimedDelivery, error: Exception
    ) -> None:
        reason = describe(error)
        message_id, sender, attempt = delivery.message.id, delivery.sender, delivery.attempt
        now = self._clock()
        if not isinstance(error, DeliveryFailed | TimeoutError):
            # Not a failure the sender reported but a defect: where it happened.
            log.error(
                "sender %s raised %s on %s",
                sender,
                type(error).__name__,
                message_id,
                extra=traceback_fields(error),
            )
        if isinstance(error, Undeliverable) or attempt >= s.max_attempts:
            log.warning(
                "delivery of %s via %s dead after %d attempts: %s",
                message_id,
                sender,
                attempt,
                reason,
            )
            await self._uow.atomically(partial(_dead, message_id, sender, now, reason))
            return
        wait = retry_delay(
            attempt,
            timedelta(seconds=s.retry_base_seconds),
            timedelta(seconds=s.retry_max_seconds),
        )
        log.info(
            "delivery of %s via %s failed (attempt %d, %s); again in %.0fs",
            message_id,
            sender,
            attempt,
            reason,
            wait.total_seconds(),
        )
        await self._uow.atomically(partial(_later, message_id, sender, now + wait, reason))


def _unrouted(channel: str, r: Repositories) -> list[str]:
    return r.outbox.unrouted_ids(channel, BATCH)


def _route(ids: list[str], senders: list[str], now: datetime, r: Repositories) -> None:
    for message_id in ids:
        r.outbox.route(message_id, senders, now)


def _bury(sender: str, now: datetime, max_attempts: int, r: Repositories) -> int:
    return r.outbox.bury_exhausted(sender, now, max_attempts)


def _due(sender: str, now: datetime, max_attempts: int, r: Repositories) -> list[str]:
    return r.outbox.due(sender, now, max_attempts, BATCH)


def _claim(
    message_id: str,
    sender: str,
    now: datetime,
    until: datetime,
    max_attempts: int,
    r: Repositories,
) -> ClaimedDelivery | None:
    return r.outbox.claim(message_id, sender, now, until, max_attempts)


def _give_back(
    message_id: str, sender: str, claimed_at: datetime, until: datetime, r: Repositories
) -> bool:
    return r.outbox.give_back(message_id, sender, claimed_at, until)


def _sent(message_id: str, sender: str, now: datetime, r: Repositories) -> None:
    r.outbox.mark_sent(message_id, sender, now)


def _later(message_id: str, sender: str, at: datetime, error: str, r: Repositories) -> None:
    r.outbox.retry_later(message_id, sender, at, error)


def _dead(message_id: str, sender: str, now: datetime, error: str, r: Repositories) -> None:
    r.outbox.mark_dead(message_id, sender, now, error)
