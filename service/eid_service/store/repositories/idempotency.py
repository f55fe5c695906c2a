"""First responses to client-chosen request ids, replayed on retry until they expire."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select

from eid_service.domain.errors import InvalidInput
from eid_service.store.models import IdempotencyRow
from eid_service.store.repositories.base import Repository, rowcount
from eid_service.use_cases.ports import RequestKey

_FIND = select(IdempotencyRow.fingerprint, IdempotencyRow.response_enc, IdempotencyRow.expires_at)


class IdempotencyRepository(Repository):
    def find(self, key: RequestKey) -> bytes | None:
        row = self._c.execute(
            _FIND.where(
                IdempotencyRow.scope == key.scope, IdempotencyRow.request_id == key.request_id
            )
        ).first()
        if row is None:
            return None
        if not self._p.hasher_equal(row[0], key.fingerprint):
            raise InvalidInput.of(
                "request_id",
                "REQUEST_ID_REUSED",
                "this request_id was already used for a different request",
            )
        return self._p.open_bytes(row[1], _context(key))

    def save(self, key: RequestKey, response: bytes, now: datetime, expires_at: datetime) -> None:
        self._c.execute(
            insert(IdempotencyRow).values(
                scope=key.scope,
                request_id=key.request_id,
                fingerprint=key.fingerprint,
                response_enc=self._p.seal_bytes(response, _context(key)),
                created_at=now,
                expires_at=expires_at,
            )
        )

    def purge_expired(self, now: datetime) -> int:
        return rowcount(
            self._c.execute(delete(IdempotencyRow).where(IdempotencyRow.expires_at <= now))
        )


def _context(key: RequestKey) -> str:
    return f"idempotency:{key.scope}:{key.request_id}"
