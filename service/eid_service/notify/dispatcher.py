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
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar

from eid_service.logs import traceback_fields
from eid_service.notify.backoff import retry_delay
from eid_service.notify.failures import DeliveryFailed, Undeliverable, describe
from eid_service.notify.flights import Flights, Sending
from eid_service.notify.senders import ROUTED_CHANNELS, Route, Sender, routes_of
from eid_service.notify.settings import DeliverySettings
from eid_service.use_cases.ports import (
    ClaimedDelivery,
    DueDelivery,
    Repositories,
    UnitOfWork,
)

log = logging.getLogger("eid.outbox")

T = TypeVar("T")

POLL_INTERVAL_SECONDS = 1.0
BATCH = 50


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
        self._flights = {route.name: Flights() for route in self._routes}
        # While serving (`run`), a delivery that ends starts the next due one.
        self._serving = False
        self._refills: set[asyncio.Task[None]] = set()

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
        self._serving = True
        try:
            while not stop.is_set():
                await self._logged(self._serve_pass())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), POLL_INTERVAL_SECONDS)
                self._wakeup.clear()
        finally:
            self._serving = False
            stop_watch.cancel()
            task = asyncio.current_task()
            cut = task is not None and task.cancelling() > 0
            # Refills under way start nothing now; then a stop lets what is
            # being sent end (each send is bounded), a cancel cancels it.
            await _end(list(self._refills), cut)
            await _end([t for f in self._flights.values() for t in f.tasks], cut)

    async def _serve_pass(self) -> None:
        """Routes new messages, then fills each route's free delivery slots.
        Sends go on in tasks of their own, a pass never waits for them, and a
        delivery that ends starts the next due one of its route at once: a
        slow route (a party's receiver answering a byte at a time) holds up
        only itself, not the activation codes and notices of everyone else
        (found by an attacker's pass: an SMS 89 s late behind one party's
        webhook), and a slow party holds a few of its route's slots, not the
        other parties' events (found by an attacker's pass: another
        party's event 30 s late, the route waiting for a whole batch)."""
        await self._give_back_unheard()
        await self._route_new()
        for route in self._routes:
            await self._logged(self._top_up(route, serving=True, bury=True))

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
        """One pass: routes new messages, then sends every due delivery, a
        few at a time to one party; returns how many deliveries this worker
        completed. A delivery that raised raises, once all have ended."""
        await self._give_back_unheard()
        await self._route_new()
        done = await asyncio.gather(*(self._drain(route) for route in self._routes))
        return sum(done)

    async def _drain(self, route: Route) -> int:
        started = await self._top_up(route, serving=False, bury=True)
        tried = set(started)
        running = set(started.values())
        delivered, errors = 0, []
        while running:
            ended, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in ended:
                if (error := task.exception()) is not None:
                    errors.append(error)
                elif task.result():
                    delivered += 1
            # Each at most once a pass: one whose claim failed is still due,
            # and would be tried again and again while the store fails.
            more = await self._top_up(route, serving=False, skip=tried)
            tried.update(more)
            running.update(more.values())
        if errors:
            raise errors[0]
        return delivered

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

    async def _top_up(
        self,
        route: Route,
        *,
        serving: bool,
        bury: bool = False,
        skip: Collection[str] = (),
    ) -> dict[str, Sending]:
        """Starts due deliveries of the route in this worker's free slots
        (never more of one party's than notify.flights allows); what it
        started, by message id. A delivery that raises (a fault of the
        store; a failed send is recorded) is logged when serving."""
        flights = self._flights[route.name]
        async with flights.lock:
            flights.refill_asked = False
            now = self._clock()
            limit = self._settings(route).max_attempts
            if bury:
                buried = await self._uow.atomically(
                    partial(_bury, route.name, now, limit), long=True
                )
                if buried:
                    log.warning("%d deliveries via %s dead: out of attempts", buried, route.name)
            if flights.full():
                return {}
            busy = flights.busy_parties()
            due = await self._uow.read(partial(_due, route.name, now, limit, busy))
            if serving and not self._serving:
                return {}  # stopping: what is in flight ends, nothing new starts
            started: dict[str, Sending] = {}
            for delivery in due:
                if delivery.message_id in skip or not flights.may_start(delivery):
                    continue
                work = self._deliver(route, delivery.message_id)
                task = asyncio.create_task(
                    self._logged(work) if serving else work, name=f"outbox-{route.name}"
                )
                flights.add(task, delivery)
                task.add_done_callback(partial(self._landed, route))
                started[delivery.message_id] = task
            return started

    def _landed(self, route: Route, task: Sending) -> None:
        """A delivery ended: while serving, its slot takes the next due one
        now, not at the next pass (one refill asked at a time per route).
        Not after a fault of the store (a failed send is recorded, not
        raised): the delivery would still be due, and be tried in a loop."""
        flights = self._flights[route.name]
        flights.remove(task)
        faulted = task.cancelled() or task.exception() is not None or task.result() is None
        if not self._serving or faulted or flights.refill_asked:
            return
        flights.refill_asked = True
        refill = asyncio.create_task(self._refill(route), name=f"outbox-{route.name}-refill")
        self._refills.add(refill)
        refill.add_done_callback(self._refills.discard)

    async def _refill(self, route: Route) -> None:
        await self._logged(self._top_up(route, serving=True))

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


async def _end(tasks: Sequence[asyncio.Task[T]], cancel: bool) -> None:
    if cancel:
        for task in tasks:
            task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _unrouted(channel: str, r: Repositories) -> list[str]:
    return r.outbox.unrouted_ids(channel, BATCH)


def _route(ids: list[str], senders: list[str], now: datetime, r: Repositories) -> None:
    for message_id in ids:
        r.outbox.route(message_id, senders, now)


def _bury(sender: str, now: datetime, max_attempts: int, r: Repositories) -> int:
    return r.outbox.bury_exhausted(sender, now, max_attempts)


def _due(
    sender: str, now: datetime, max_attempts: int, busy: list[str], r: Repositories
) -> list[DueDelivery]:
    return r.outbox.due(sender, now, max_attempts, BATCH, busy)


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
