"""Relying parties and their API keys (stored only as keyed digests)."""

from __future__ import annotations

import secrets
from datetime import datetime

from eid_service.domain.party import RelyingParty, new_party_id
from eid_service.domain.share import Attribute
from eid_service.security.keyed_hash import new_secret_token
from eid_service.store.repositories.base import Repository
from eid_service.store.sql import Row, Sql

API_KEY_PURPOSE = "api-key"
API_KEY_PREFIX = "eidk"
# Concurrent failures of one party land on one of these rows at random.
FAILURE_SHARDS = 8

_INSERT = Sql(
    "INSERT INTO relying_parties (id, name, api_key_digest, scopes, created_at)"
    " VALUES (:id, :name, :digest, :scopes, :created_at)"
)
_BY_KEY = Sql(
    "SELECT id, name, scopes FROM relying_parties"
    " WHERE api_key_digest = :digest AND disabled_at IS NULL"
)
_BY_ID = Sql("SELECT id, name, scopes FROM relying_parties WHERE id = :id AND disabled_at IS NULL")
_ALL = Sql("SELECT id, name, scopes FROM relying_parties ORDER BY created_at")
_FAILURES = Sql(
    "SELECT COALESCE(SUM(failures), 0) FROM party_failures"
    " WHERE party_id = :party_id AND window_start > :since"
)
_RECORD_FAILURE = Sql(
    "INSERT INTO party_failures (party_id, window_start, shard, failures)"
    " VALUES (:party_id, :window_start, :shard, 1)"
    " ON CONFLICT (party_id, window_start, shard)"
    " DO UPDATE SET failures = party_failures.failures + 1"
)
_PURGE_FAILURES = Sql(
    "DELETE FROM party_failures WHERE (party_id, window_start, shard) IN (SELECT party_id,"
    " window_start, shard FROM party_failures WHERE window_start < :before LIMIT :limit)"
)


class RelyingPartyRepository(Repository):
    def create(
        self, name: str, scopes: frozenset[Attribute], now: datetime
    ) -> tuple[RelyingParty, str]:
        """A new party and its API key; the key is shown once and never stored."""
        party = RelyingParty(id=new_party_id(), name=name, scopes=scopes)
        api_key = new_secret_token(API_KEY_PREFIX)
        self._db.count(
            _INSERT,
            {
                "id": party.id,
                "name": name,
                "digest": self._p.hasher.digest(API_KEY_PURPOSE, api_key),
                "scopes": ",".join(sorted(a.value for a in scopes)),
                "created_at": self._t(now),
            },
        )
        return party, api_key

    def by_api_key(self, api_key: str) -> RelyingParty | None:
        digest = self._p.hasher.digest(API_KEY_PURPOSE, api_key)
        row = self._db.one(_BY_KEY, {"digest": digest})
        return None if row is None else _to_domain(row)

    def get(self, party_id: str) -> RelyingParty | None:
        row = self._db.one(_BY_ID, {"id": party_id})
        return None if row is None else _to_domain(row)

    def list_all(self) -> list[RelyingParty]:
        return [_to_domain(r) for r in self._db.all(_ALL, {})]

    def failures_since(self, party_id: str, since: datetime) -> int:
        row = self._db.one(_FAILURES, {"party_id": party_id, "since": self._t(since)})
        return 0 if row is None else int(row[0])

    def record_failure(self, party_id: str, bucket: datetime) -> None:
        self._db.count(
            _RECORD_FAILURE,
            {
                "party_id": party_id,
                "window_start": self._t(bucket),
                "shard": secrets.randbelow(FAILURE_SHARDS),
            },
        )

    def purge_failures(self, before: datetime, limit: int) -> int:
        return self._db.count(_PURGE_FAILURES, {"before": self._t(before), "limit": limit})


def _to_domain(row: Row) -> RelyingParty:
    scopes = frozenset(Attribute(v) for v in row[2].split(",") if v)
    return RelyingParty(id=row[0], name=row[1], scopes=scopes)
