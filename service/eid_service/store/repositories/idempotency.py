"""First responses to client-chosen request ids, replayed on retry until they expire."""

from __future__ import annotations

from datetime import datetime

from eid_service.domain.errors import InvalidInput
from eid_service.domain.request_id import REQUEST_ID_REUSED
from eid_service.store.repositories.base import Repository
from eid_service.store.sql import Sql
from eid_service.use_cases.ports import RequestKey

_FIND = Sql(
    "SELECT fingerprint, response_enc FROM idempotency_records"
    " WHERE scope = :scope AND request_id = :request_id"
)
_SAVE = Sql(
    "INSERT INTO idempotency_records"
    " (scope, request_id, fingerprint, response_enc, created_at, expires_at)"
    " VALUES (:scope, :request_id, :fingerprint, :response, :created_at, :expires_at)"
)
_REPLACE = Sql(
    "UPDATE idempotency_records SET response_enc = :response, created_at = :created_at,"
    " expires_at = :expires_at WHERE scope = :scope AND request_id = :request_id"
)
_PURGE = Sql(
    "DELETE FROM idempotency_records WHERE (scope, request_id) IN (SELECT scope, request_id"
    " FROM idempotency_records WHERE expires_at <= :now LIMIT :limit)"
)


class IdempotencyRepository(Repository):
    def find(self, key: RequestKey) -> bytes | None:
        row = self._db.one(_FIND, {"scope": key.scope, "request_id": key.request_id})
        if row is None:
            return None
        if not self._p.hasher_equal(bytes(row[0]), key.fingerprint):
            raise InvalidInput.of(
                "request_id",
                REQUEST_ID_REUSED,
                "this request_id was already used for a different request",
            )
        return self._p.open_bytes(bytes(row[1]), _context(key))

    def save(self, key: RequestKey, response: bytes, now: datetime, expires_at: datetime) -> None:
        self._write(_SAVE, key, response, now, expires_at)

    def replace(
        self, key: RequestKey, response: bytes, now: datetime, expires_at: datetime
    ) -> None:
        self._write(_REPLACE, key, response, now, expires_at)

    def _write(
        self, sql: Sql, key: RequestKey, response: bytes, now: datetime, expires_at: datetime
    ) -> None:
        self._db.count(
            sql,
            {
                "scope": key.scope,
                "request_id": key.request_id,
                "fingerprint": key.fingerprint,
                "response": self._p.seal_bytes(response, _context(key)),
                "created_at": self._t(now),
                "expires_at": self._t(expires_at),
            },
        )

    def purge_expired(self, now: datetime, limit: int) -> int:
        return self._db.count(_PURGE, {"now": self._t(now), "limit": limit})


def _context(key: RequestKey) -> str:
    return f"idempotency:{key.scope}:{key.request_id}"
