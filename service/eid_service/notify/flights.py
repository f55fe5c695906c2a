"""The deliveries one worker has in flight on one route: at most CONCURRENCY,
and of those at most PER_PARTY to one party, so a party whose receiver hangs
holds 2 of its route's slots, never all 8, and the other parties' events
still go out.

Per worker, not across workers: with N workers a hung receiver holds 2N
connections of ours, but each worker still keeps 6 of its 8 slots for
everyone else, which is the property that matters. A cap shared across
workers would need a claim to read (and lock) the party's deliveries in
flight on every send."""

from __future__ import annotations

import asyncio
from collections import Counter

from eid_service.use_cases.ports import DueDelivery

# Deliveries in flight per sender per worker.
CONCURRENCY = 8
PER_PARTY = 2

Sending = asyncio.Task[bool | None]


class Flights:
    def __init__(self) -> None:
        self.tasks: dict[Sending, DueDelivery] = {}
        # One top-up at a time, so two never start the same delivery.
        self.lock = asyncio.Lock()
        # A refill of the freed slots is on its way (one at a time).
        self.refill_asked = False

    def _live(self) -> list[DueDelivery]:
        # An ended task counts no more, even before its done callbacks ran.
        return [due for task, due in self.tasks.items() if not task.done()]

    def full(self) -> bool:
        return len(self._live()) >= CONCURRENCY

    def busy_parties(self) -> list[str]:
        """Parties none of whose deliveries may start now."""
        count = Counter(due.party_id for due in self._live() if due.party_id is not None)
        return sorted(party for party, n in count.items() if n >= PER_PARTY)

    def may_start(self, due: DueDelivery) -> bool:
        live = self._live()
        if len(live) >= CONCURRENCY or any(d.message_id == due.message_id for d in live):
            return False
        same_party = [d for d in live if due.party_id is not None and d.party_id == due.party_id]
        return len(same_party) < PER_PARTY

    def add(self, task: Sending, due: DueDelivery) -> None:
        self.tasks[task] = due

    def remove(self, task: Sending) -> None:
        self.tasks.pop(task, None)
