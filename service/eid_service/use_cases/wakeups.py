"""In-process wake-ups for callers waiting on a change in the store.

A waiter sleeps until another call in this process says the key changed, or
until its timeout. It is only a shortcut: a change committed by another
process wakes nobody here, so waiters still poll the store between naps.
Nothing is left behind by a waiter that times out or is cancelled."""

from __future__ import annotations

import asyncio
import math


class Wakeups:
    def __init__(self) -> None:
        self._waiting: dict[str, set[asyncio.Future[None]]] = {}
        # When the server drains: waits must have ended by then (time.monotonic()).
        self.end_by = math.inf

    def drain(self, end_by: float) -> None:
        """Waiters give up by `end_by`, answering before the drain's grace runs out."""
        self.end_by = min(self.end_by, end_by)

    async def nap(self, key: str, seconds: float) -> bool:
        """Sleeps at most `seconds`; True if woken by `notify(key)`."""
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiting.setdefault(key, set())
        waiters.add(woken)
        try:
            done, _ = await asyncio.wait({woken}, timeout=max(0.0, seconds))
            return bool(done)
        finally:
            woken.cancel()
            waiters.discard(woken)
            if not waiters and self._waiting.get(key) is waiters:
                del self._waiting[key]

    def notify(self, key: str) -> None:
        """Wakes every waiter of `key` (call on the event loop's thread)."""
        for woken in self._waiting.get(key, ()):
            if not woken.done():
                woken.set_result(None)

    def __len__(self) -> int:
        """How many keys have waiters (tests check none are left)."""
        return len(self._waiting)
