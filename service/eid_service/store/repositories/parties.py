"""Relying parties and their API keys (stored only as keyed digests)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from eid_service.domain.party import Grant, PartyStatus, RelyingParty, VerifyMode
from eid_service.domain.share import Attribute
from eid_service.security.keyed_hash import new_secret_token
from eid_service.store.repositories.base import Repository
from eid_service.store.sql import Row, Sql
from eid_service.use_cases.ports import PartyRecord

API_KEY_PURPOSE = "api-key"
API_KEY_PREFIX = "eidk"
# Concurrent failures of one party land on one of these rows at random.
FAILURE_SHARDS = 8

_PARTY = (
    "SELECT id, name, scopes, modes, status, contact, rate_per_minute,"
    " citizen_rate_per_minute, created_at, suspended_at, previous_key_expires_at,"
    " client_cert_sha256, key_rotated_at FROM relying_parties WHERE disabled_at IS NULL"
)
_INSERT = Sql(
    "INSERT INTO relying_parties (id, name, api_key_digest, scopes, modes, status, contact,"
    " rate_per_minute, citizen_rate_per_minute, created_at, client_cert_sha256) VALUES (:id,"
    " :name, :digest, :scopes, :modes, :status, :contact, :rate, :citizen_rate, :created_at,"
    " :client_cert)"
)
# The current key, or the previous one until it expires.
_BY_KEY = Sql(
    _PARTY + " AND (api_key_digest = :digest"
    " OR (previous_api_key_digest = :digest AND previous_key_expires_at > :now))"
)
_BY_ID = Sql(_PARTY + " AND id = :id")
# PostgreSQL: a concurrent change of the row waits, then reads it as changed
# (SQLite's writer runs one write at a time, and has no FOR UPDATE).
_BY_ID_FOR_CHANGE = Sql(_PARTY + " AND id = :id FOR UPDATE")
_OLDEST_FIRST = " ORDER BY created_at, id LIMIT :limit"
_PAGE_FIRST = Sql(_PARTY + _OLDEST_FIRST)
_AFTER = (
    " AND (created_at > (SELECT created_at FROM relying_parties WHERE id = :after)"
    " OR (created_at = (SELECT created_at FROM relying_parties WHERE id = :after)"
    " AND id > :after))"
)
_PAGE_AFTER = Sql(_PARTY + _AFTER + _OLDEST_FIRST)
_SET_STATUS = Sql(
    "UPDATE relying_parties SET status = :status, suspended_at = :suspended_at"
    " WHERE id = :id AND disabled_at IS NULL AND status <> :status"
)
_SET_LIMITS = Sql(
    "UPDATE relying_parties SET rate_per_minute = :rate, citizen_rate_per_minute = :citizen_rate"
    " WHERE id = :id AND disabled_at IS NULL"
)
_SET_SCOPES = Sql(
    "UPDATE relying_parties SET scopes = :scopes WHERE id = :id AND disabled_at IS NULL"
)
_SET_CLIENT_CERT = Sql(
    "UPDATE relying_parties SET client_cert_sha256 = :client_cert"
    " WHERE id = :id AND disabled_at IS NULL"
)
_DELETE = Sql(
    "UPDATE relying_parties SET disabled_at = :now WHERE id = :id AND disabled_at IS NULL"
)
# SET reads the row as it was: the current digest moves to previous_*.
_ROTATE = Sql(
    "UPDATE relying_parties SET previous_api_key_digest = api_key_digest,"
    " previous_key_expires_at = :expires_at, api_key_digest = :digest, key_rotated_at = :now"
    " WHERE id = :id AND disabled_at IS NULL"
)
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


def _join(values: frozenset[Attribute] | frozenset[VerifyMode]) -> str:
    return ",".join(sorted(v.value for v in values))


def _scopes(attributes: frozenset[Attribute], grants: frozenset[Grant]) -> str:
    """The scopes column: attribute names and grant names (biometric_match)."""
    return ",".join(sorted([*(a.value for a in attributes), *(g.value for g in grants)]))


_GRANTS = {g.value: g for g in Grant}


class RelyingPartyRepository(Repository):
    def create(self, party: RelyingParty, now: datetime) -> str:
        """Stores the party; its API key, shown once and never stored."""
        api_key = new_secret_token(API_KEY_PREFIX)
        self._db.count(
            _INSERT,
            {
                "id": party.id,
                "name": party.name,
                "digest": self._digest(api_key),
                "scopes": _scopes(party.scopes, party.grants),
                "modes": _join(party.modes),
                "status": party.status.value,
                "contact": party.contact,
                "rate": party.rate_per_minute,
                "citizen_rate": party.citizen_rate_per_minute,
                "created_at": self._t(now),
                "client_cert": party.client_cert_sha256,
            },
        )
        return api_key

    def _digest(self, api_key: str) -> bytes:
        return self._p.hasher.digest(API_KEY_PURPOSE, api_key)

    def by_api_key(self, api_key: str, now: datetime) -> RelyingParty | None:
        row = self._db.one(_BY_KEY, {"digest": self._digest(api_key), "now": self._t(now)})
        return None if row is None else _party(row)

    def get(self, party_id: str, *, for_change: bool = False) -> PartyRecord | None:
        sql = _BY_ID_FOR_CHANGE if for_change and self._db.postgres else _BY_ID
        row = self._db.one(sql, {"id": party_id})
        return None if row is None else self._record(row)

    def list_page(self, after: str | None, limit: int) -> list[PartyRecord]:
        sql = _PAGE_FIRST if after is None else _PAGE_AFTER
        return [self._record(r) for r in self._db.all(sql, {"after": after, "limit": limit})]

    def set_status(self, party_id: str, status: PartyStatus, now: datetime) -> bool:
        suspended_at = self._t(now) if status is PartyStatus.SUSPENDED else None
        params = {"id": party_id, "status": status.value, "suspended_at": suspended_at}
        return self._db.count(_SET_STATUS, params) == 1

    def set_limits(self, party_id: str, rate_per_minute: int, citizen_rate_per_minute: int) -> bool:
        params = {"id": party_id, "rate": rate_per_minute, "citizen_rate": citizen_rate_per_minute}
        return self._db.count(_SET_LIMITS, params) == 1

    def set_scopes(
        self, party_id: str, scopes: frozenset[Attribute], grants: frozenset[Grant] = frozenset()
    ) -> bool:
        params = {"id": party_id, "scopes": _scopes(scopes, grants)}
        return self._db.count(_SET_SCOPES, params) == 1

    def set_client_certificate(self, party_id: str, sha256: bytes | None) -> bool:
        params = {"id": party_id, "client_cert": sha256}
        return self._db.count(_SET_CLIENT_CERT, params) == 1

    def delete(self, party_id: str, now: datetime) -> bool:
        return self._db.count(_DELETE, {"id": party_id, "now": self._t(now)}) == 1

    def rotate_key(self, party_id: str, overlap: timedelta, now: datetime) -> str | None:
        api_key = new_secret_token(API_KEY_PREFIX)
        params = {
            "id": party_id,
            "digest": self._digest(api_key),
            "expires_at": self._t(now + overlap),
            "now": self._t(now),
        }
        return api_key if self._db.count(_ROTATE, params) == 1 else None

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

    def _record(self, row: Row) -> PartyRecord:
        return PartyRecord(
            party=_party(row),
            created_at=self._read_t(row[8]),
            suspended_at=None if row[9] is None else self._read_t(row[9]),
            previous_key_expires_at=None if row[10] is None else self._read_t(row[10]),
            key_rotated_at=None if row[12] is None else self._read_t(row[12]),
        )


def _party(row: Row) -> RelyingParty:
    names = [v for v in row[2].split(",") if v]
    return RelyingParty(
        id=row[0],
        name=row[1],
        scopes=frozenset(Attribute(v) for v in names if v not in _GRANTS),
        grants=frozenset(_GRANTS[v] for v in names if v in _GRANTS),
        modes=frozenset(VerifyMode(v) for v in row[3].split(",") if v),
        status=PartyStatus(row[4]),
        contact=row[5],
        rate_per_minute=row[6],
        citizen_rate_per_minute=row[7],
        client_cert_sha256=None if row[11] is None else bytes(row[11]),
    )
