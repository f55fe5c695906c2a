"""How the dispatcher shares a route among relying parties (fake store): at
most PER_PARTY of one party's deliveries are in flight on a worker, the
others' go on meanwhile, and a delivery that ends starts the next due one
without waiting for a pass. A party's receiver that holds its POSTs must not
hold up another party's events (found by an attacker's pass: 30 s late)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from eid_service.domain.notices import Notice, NoticeKind
from eid_service.notify import dispatcher
from eid_service.notify.dispatcher import OutboxDispatcher
from eid_service.notify.flights import PER_PARTY
from eid_service.notify.party_webhook import party_delivery
from eid_service.notify.senders import PARTY_WEBHOOK, Route
from eid_service.notify.settings import DeliverySettings
from eid_service.use_cases.ports import OutgoingMessage
from tests.unit.fake_store import FakeUnitOfWork

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
SLOW = "rp_slow"


class Webhooks:
    """Parties' receivers as the route reaches them: SLOW's POSTs are held,
    each until one is let go; every other party's is answered at once."""

    def __init__(self) -> None:
        self._gate = asyncio.Semaphore(0)
        self.held: list[str] = []
        self.most_held = 0
        self.delivered: list[tuple[str, str]] = []
        self._moved = asyncio.Condition()

    async def send(self, message: OutgoingMessage) -> None:
        if message.destination == SLOW:
            self.held.append(message.id)
            self.most_held = max(self.most_held, len(self.held))
            await self._tell()
            try:
                await self._gate.acquire()
            finally:
                self.held.remove(message.id)
        self.delivered.append((message.destination, message.id))
        await self._tell()

    async def _tell(self) -> None:
        async with self._moved:
            self._moved.notify_all()

    async def until(self, check: Callable[[], bool]) -> None:
        async with asyncio.timeout(10), self._moved:  # a hang guard, not a bound on speed
            await self._moved.wait_for(check)

    def let_go(self, count: int) -> None:
        for _ in range(count):
            self._gate.release()

    def of(self, party: str) -> list[str]:
        return [i for p, i in self.delivered if p == party]


def _worker(uow: FakeUnitOfWork, hooks: Webhooks) -> OutboxDispatcher:
    route = Route(PARTY_WEBHOOK, frozenset({PARTY_WEBHOOK}), hooks, party_delivery(POLICY))
    return OutboxDispatcher(uow, [route], lambda: T0, POLICY)


POLICY = DeliverySettings()


async def _events(uow: FakeUnitOfWork, party: str, count: int) -> list[str]:
    notice = Notice(NoticeKind.STATUS_EVENT, "account.locked", "{}")
    return await uow.atomically(
        lambda r: [
            r.outbox.add(PARTY_WEBHOOK, party, notice, T0, party_id=party) for _ in range(count)
        ]
    )


def _attempts(uow: FakeUnitOfWork, ids: list[str]) -> list[int]:
    return sorted(uow.state.outbox[i].deliveries[PARTY_WEBHOOK].attempts for i in ids)


async def test_a_held_party_takes_two_slots_and_the_other_parties_go_on() -> None:
    uow, hooks = FakeUnitOfWork(), Webhooks()
    worker = _worker(uow, hooks)
    slow = await _events(uow, SLOW, 5)
    others = await _events(uow, "rp_bank", 3) + await _events(uow, "rp_telco", 1)

    one_pass = asyncio.create_task(worker.deliver_pending())
    await hooks.until(lambda: len(hooks.delivered) == len(others) and len(hooks.held) == PER_PARTY)
    assert sorted(hooks.of("rp_bank") + hooks.of("rp_telco")) == sorted(others)
    # The held party's other events are not even claimed: no attempt spent.
    assert _attempts(uow, slow) == [0, 0, 0, 1, 1]

    hooks.let_go(len(slow))
    assert await one_pass == len(slow) + len(others)
    assert sorted(hooks.of(SLOW)) == sorted(slow)
    assert hooks.most_held == PER_PARTY


async def test_serving_a_freed_slot_takes_the_next_due_delivery_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No pass comes on its own here: what starts, starts because a delivery
    ended or the worker was woken (a message was written)."""
    monkeypatch.setattr(dispatcher, "POLL_INTERVAL_SECONDS", 600.0)
    uow, hooks = FakeUnitOfWork(), Webhooks()
    worker = _worker(uow, hooks)
    slow = await _events(uow, SLOW, 3)
    stop = asyncio.Event()
    serving = asyncio.create_task(worker.run(stop))
    try:
        await hooks.until(lambda: len(hooks.held) == PER_PARTY)

        # Another party's event, written while the slow one's are held.
        (other,) = await _events(uow, "rp_telco", 1)
        worker.wake()
        await hooks.until(lambda: hooks.of("rp_telco") == [other])
        assert len(hooks.held) == PER_PARTY and hooks.of(SLOW) == []

        # One of the slow party's POSTs ends: its third event takes the slot.
        first = hooks.held[0]
        hooks.let_go(1)
        await hooks.until(lambda: hooks.of(SLOW) == [first] and len(hooks.held) == PER_PARTY)
        assert sorted([first, *hooks.held]) == sorted(slow)
    finally:
        stop.set()
        hooks.let_go(len(slow))
        await serving
    assert sorted(hooks.of(SLOW)) == sorted(slow)
    assert hooks.most_held == PER_PARTY
