"""Fixed-window counters shared by every server process (domain/rate_limits.py).

A hit is one upsert that counts only while the window has room, so
concurrent hits across processes can never exceed a limit. Keys are keyed
digests: the table names no phone, address or ID number."""

from __future__ import annotations

from datetime import datetime, timedelta

from eid_service.domain.rate_limits import Limit
from eid_service.store.repositories.base import Repository
from eid_service.store.sql import Sql

RATE_PURPOSE = "rate-limit"

_HIT = Sql(
    "INSERT INTO rate_counters (key, window_start, window_end, hits)"
    " VALUES (:key, :start, :end, 1) ON CONFLICT (key, window_start) DO UPDATE"
    " SET hits = rate_counters.hits + 1 WHERE rate_counters.hits < :max RETURNING hits"
)
_TAKE_BACK = Sql(
    "UPDATE rate_counters SET hits = hits - 1 WHERE key = :key AND window_start = :start"
    " AND hits > 0"
)
_PURGE = Sql(
    "DELETE FROM rate_counters WHERE (key, window_start) IN (SELECT key, window_start"
    " FROM rate_counters WHERE window_end <= :now LIMIT :limit)"
)


class RateLimitRepository(Repository):
    def hit(self, key: str, limit: Limit, now: datetime) -> timedelta | None:
        start = limit.window_start(now)
        end = start + limit.window
        params = {
            "key": self._p.hasher.digest(RATE_PURPOSE, f"{limit.name}\x00{key}"),
            "start": self._t(start),
            "end": self._t(end),
            "max": limit.hits,
        }
        if self._db.one(_HIT, params) is not None:
            return None
        return end - now

    def take_back(self, key: str, limit: Limit, now: datetime) -> None:
        params = {
            "key": self._p.hasher.digest(RATE_PURPOSE, f"{limit.name}\x00{key}"),
            "start": self._t(limit.window_start(now)),
        }
        self._db.count(_TAKE_BACK, params)

    def purge_lapsed(self, now: datetime, limit: int) -> int:
        return self._db.count(_PURGE, {"now": self._t(now), "limit": limit})
