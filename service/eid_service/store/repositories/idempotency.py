"""First responses to client-chosen request ids, replayed on retry."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from eid_service.domain.errors import InvalidInput
from eid_service.store.models import IdempotencyRow
from eid_service.store.protection import DataProtection


class IdempotencyRepository:
    def __init__(self, session: AsyncSession, protection: DataProtection) -> None:
        self._s = session
        self._p = protection

    def fingerprint(self, scope: str, payload: bytes) -> bytes:
        # Keyed, so the stored fingerprint reveals nothing about the request.
        return self._p.hasher.digest("request", scope + ":" + payload.hex())

    async def replay(self, scope: str, request_id: str, fingerprint: bytes) -> bytes | None:
        """The stored response for this request id, or None if it is new."""
        row = await self._s.get(IdempotencyRow, (scope, request_id))
        if row is None:
            return None
        if not self._p.hasher_equal(row.fingerprint, fingerprint):
            raise InvalidInput.of(
                "request_id",
                "REQUEST_ID_REUSED",
                "this request_id was already used for a different request",
            )
        return self._p.open_bytes(row.response_enc, f"idempotency:{scope}:{request_id}")

    async def save(
        self, scope: str, request_id: str, fingerprint: bytes, response: bytes, now: datetime
    ) -> None:
        self._s.add(
            IdempotencyRow(
                scope=scope,
                request_id=request_id,
                fingerprint=fingerprint,
                response_enc=self._p.seal_bytes(response, f"idempotency:{scope}:{request_id}"),
                created_at=now,
            )
        )
        await self._s.flush()
