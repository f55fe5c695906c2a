"""Relying parties' token buckets, shared by every server process
(domain/party_limits.py).

A take is one upsert over all the buckets of a call: each row is refilled
for the time since its last take and loses a token only when a whole one is
there, so concurrent takes from any number of processes never admit more
than the bucket holds (PostgreSQL locks the row until commit, SQLite has one
writer). Only the rows that gave a token come back; a refusal reads the
others once more to say how long until their next token. Rows are taken in
key order, so two calls sharing two buckets cannot deadlock.

The bucket's shape (capacity, refill rate) is stored with it and replaced on
each take, so a party whose limits an operator changed is counted by the new
ones as soon as its cached copy is refreshed. Keys are keyed digests: the
table names no party-citizen pair in the clear. Times are epoch seconds
(float), which both databases do arithmetic on alike."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from eid_service.domain.party_limits import REFILL_SECONDS, WHOLE_TOKEN, TokenBucket
from eid_service.store.repositories.base import Repository
from eid_service.store.sql import Sql

BUCKET_PURPOSE = "rate-bucket"

# What the bucket holds now: its tokens refilled since the last take, capped.
_FILLED = "token_buckets.tokens + (:now - token_buckets.refilled_at) * excluded.per_second"
_AVAILABLE = f"CASE WHEN {_FILLED} < excluded.capacity THEN {_FILLED} ELSE excluded.capacity END"


def _take_sql(rows: int) -> Sql:
    values = ", ".join(
        f"(:key{i}, :capacity{i} - :count, :now, :capacity{i}, :rate{i})" for i in range(rows)
    )
    return Sql(
        "INSERT INTO token_buckets (key, tokens, refilled_at, capacity, per_second)"  # noqa: S608
        f" VALUES {values} ON CONFLICT (key) DO UPDATE SET tokens = {_AVAILABLE} - :count,"
        " refilled_at = :now, capacity = excluded.capacity, per_second = excluded.per_second"
        f" WHERE {_AVAILABLE} >= :need RETURNING key"
    )


def _read_sql(count: int) -> Sql:
    keys = ", ".join(f":key{i}" for i in range(count))
    return Sql(f"SELECT key, tokens, refilled_at FROM token_buckets WHERE key IN ({keys})")  # noqa: S608


# By number of buckets: a call takes from one or two (the party's, the party-citizen's).
_TAKE: dict[int, Sql] = {}
_READ: dict[int, Sql] = {}
_PURGE = Sql(
    "DELETE FROM token_buckets WHERE key IN (SELECT key FROM token_buckets"
    " WHERE refilled_at <= :before LIMIT :limit)"
)


class RateBucketRepository(Repository):
    def take(
        self, buckets: Sequence[TokenBucket], now: datetime, count: int = 1
    ) -> list[tuple[TokenBucket, float]]:
        if any(count > bucket.capacity for bucket in buckets):
            raise ValueError("more tokens asked for than a bucket holds")
        keyed = sorted(
            ((self._p.hasher.digest(BUCKET_PURPOSE, b.key), b) for b in buckets),
            key=lambda pair: pair[0],
        )
        at = now.timestamp()
        # Refills are float sums: `count` tokens are there when this much is.
        params: dict[str, Any] = {"now": at, "count": count, "need": count - 1 + WHOLE_TOKEN}
        for i, (digest, bucket) in enumerate(keyed):
            params[f"key{i}"] = digest
            params[f"capacity{i}"] = bucket.capacity
            params[f"rate{i}"] = bucket.per_second
        sql = _TAKE.get(len(keyed)) or _TAKE.setdefault(len(keyed), _take_sql(len(keyed)))
        taken = {bytes(row[0]) for row in self._db.all(sql, params)}
        refused = [(d, b) for d, b in keyed if d not in taken]
        if not refused:
            return []
        read = _READ.get(len(refused)) or _READ.setdefault(len(refused), _read_sql(len(refused)))
        rows = self._db.all(read, {f"key{i}": d for i, (d, _) in enumerate(refused)})
        state = {bytes(row[0]): (float(row[1]), float(row[2])) for row in rows}
        waits = []
        for digest, bucket in refused:
            # A refused bucket has a row: it was refused by it.
            tokens, refilled_at = state.get(digest, (0.0, at))
            waits.append((bucket, bucket.wait(tokens, refilled_at, at)))
        return waits

    def purge_full(self, now: datetime, limit: int) -> int:
        # Untouched for two refill periods: full again whatever it held.
        before = now.timestamp() - 2 * REFILL_SECONDS
        return self._db.count(_PURGE, {"before": before, "limit": limit})
