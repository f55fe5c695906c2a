"""Relying parties by API key, remembered for a short while.

Every Verify authenticates its party; reading the party from the database
each time would cost a round trip on the hot path. Entries live `TTL`,
suspended parties' too: a party suspended, resumed or deleted by an operator
(or a rotated-out key past its overlap) is served as before for at most that
long."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

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

    @staticmethod
    def _key(api_key: str) -> bytes:
        # The raw key is not kept in memory longer than the call.
        return hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).digest()

    def get(self, api_key: str) -> RelyingParty | None:
        found = self._entries.get(self._key(api_key))
        if found is None or found[0] < self._clock():
            return None
        return found[1]

    def put(self, api_key: str, party: RelyingParty) -> None:
        if len(self._entries) >= MAX_ENTRIES:
            now = self._clock()
            self._entries = {k: v for k, v in self._entries.items() if v[0] >= now}
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
        self._entries[self._key(api_key)] = (self._clock() + self._ttl, party)
