"""One asyncio lock per key, created on demand and dropped when unused."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class KeyedLocks:
    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._unused = asyncio.Event()  # no key held or waited for
        self._unused.set()

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        self._unused.clear()
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
                if not self._locks:
                    self._unused.set()
            else:
                self._locks[key] = (lock, users - 1)

    async def idle(self) -> None:
        """Returns once no key is held or waited for."""
        await self._unused.wait()
