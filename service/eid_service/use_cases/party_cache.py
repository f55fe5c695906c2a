"""Relying parties by API key, remembered for a short while.

Every Verify authenticates its party; reading the party from the database
each time would cost a round trip on the hot path. Entries live `TTL`,
suspended parties' too: a party suspended, resumed or deleted by an operator
(or a rotated-out key past its overlap) is served as before for at most that
long.

When an entry is missing or has lapsed, the calls that need it at that
moment share one read: a party with 32 calls in flight when its entry lapses
(every `TTL` under load) costs one query, not 32."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from functools import partial

from eid_service.domain.party import RelyingParty

TTL_SECONDS = 10.0
MAX_ENTRIES = 10_000


class PartyCache:
    def __init__(
        self, ttl: float = TTL_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[bytes, tuple[float, RelyingParty]] = {}
        # Reads under way, by key digest: later callers wait on the same one.
        self._loading: dict[bytes, asyncio.Future[RelyingParty | None]] = {}

    @staticmethod
    def _key(api_key: str) -> bytes:
        # The raw key is not kept in memory longer than the call.
        return hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).digest()

    def get(self, api_key: str) -> RelyingParty | None:
        """The party remembered for `api_key`, if its entry has not lapsed."""
        return self._fresh(self._key(api_key))

    def _fresh(self, key: bytes) -> RelyingParty | None:
        found = self._entries.get(key)
        if found is None or found[0] < self._clock():
            return None
        return found[1]

    async def load(
        self, api_key: str, load: Callable[[], Awaitable[RelyingParty | None]]
    ) -> RelyingParty | None:
        """The party of `api_key` once `get` found none: by `load` (None: no
        such key, not remembered), or from memory if a caller filled the
        entry meanwhile. Concurrent callers share one `load`; a caller
        that goes away (a deadline, a cancelled call) leaves it running for
        the others, and a failed load fails the callers that waited on it
        only (the next caller loads anew)."""
        key = self._key(api_key)
        party = self._fresh(key)
        if party is not None:
            return party
        loading = self._loading.get(key)
        loop = asyncio.get_running_loop()
        # A finished read (its callback not run yet) or one of another event
        # loop (a closed one's never finishes) is not joined.
        if loading is None or loading.done() or loading.get_loop() is not loop:
            loading = asyncio.ensure_future(self._load(key, load))
            self._loading[key] = loading
            loading.add_done_callback(partial(self._loaded, key))
        return await asyncio.shield(loading)

    async def _load(
        self, key: bytes, load: Callable[[], Awaitable[RelyingParty | None]]
    ) -> RelyingParty | None:
        party = await load()
        if party is not None:
            self._remember(key, party)
        return party

    def _loaded(self, key: bytes, loading: asyncio.Future[RelyingParty | None]) -> None:
        if self._loading.get(key) is loading:
            del self._loading[key]

    def _remember(self, key: bytes, party: RelyingParty) -> None:
        if len(self._entries) >= MAX_ENTRIES:
            now = self._clock()
            self._entries = {k: v for k, v in self._entries.items() if v[0] >= now}
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
        self._entries[key] = (self._clock() + self._ttl, party)
