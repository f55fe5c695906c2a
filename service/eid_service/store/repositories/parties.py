"""Relying parties and their API keys (stored only as keyed digests)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from eid_service.domain.party import RelyingParty, new_party_id
from eid_service.domain.share import Attribute
from eid_service.security.keyed_hash import new_secret_token
from eid_service.store.models import RelyingPartyRow
from eid_service.store.protection import DataProtection

API_KEY_PURPOSE = "api-key"
API_KEY_PREFIX = "eidk"


class RelyingPartyRepository:
    def __init__(self, session: AsyncSession, protection: DataProtection) -> None:
        self._s = session
        self._p = protection

    async def create(
        self, name: str, scopes: frozenset[Attribute], now: datetime
    ) -> tuple[RelyingParty, str]:
        """A new party and its API key; the key is shown once and never stored."""
        party = RelyingParty(id=new_party_id(), name=name, scopes=scopes)
        api_key = new_secret_token(API_KEY_PREFIX)
        self._s.add(
            RelyingPartyRow(
                id=party.id,
                name=name,
                api_key_digest=self._p.hasher.digest(API_KEY_PURPOSE, api_key),
                scopes=",".join(sorted(a.value for a in scopes)),
                created_at=now,
            )
        )
        await self._s.flush()
        return party, api_key

    async def by_api_key(self, api_key: str) -> RelyingParty | None:
        digest = self._p.hasher.digest(API_KEY_PURPOSE, api_key)
        row = await self._s.scalar(
            select(RelyingPartyRow).where(
                RelyingPartyRow.api_key_digest == digest, RelyingPartyRow.disabled_at.is_(None)
            )
        )
        return None if row is None else _to_domain(row)

    async def get(self, party_id: str) -> RelyingParty | None:
        row = await self._s.get(RelyingPartyRow, party_id)
        if row is None or row.disabled_at is not None:
            return None
        return _to_domain(row)

    async def failures_since(self, party_id: str, window_start: datetime) -> int:
        """Failed verifications counted in a window that began after `window_start`."""
        row = (
            await self._s.execute(
                select(
                    RelyingPartyRow.failed_verifications, RelyingPartyRow.failure_window_start
                ).where(RelyingPartyRow.id == party_id)
            )
        ).one()
        count, started = row[0], row[1]
        return count if started is not None and started > window_start else 0

    async def record_failure(self, party_id: str, now: datetime, window_start: datetime) -> None:
        """Counts one failure, opening a new window when the last one has lapsed;
        one UPDATE, so concurrent workers never lose a count."""
        lapsed = (RelyingPartyRow.failure_window_start.is_(None)) | (
            RelyingPartyRow.failure_window_start <= window_start
        )
        await self._s.execute(
            update(RelyingPartyRow)
            .where(RelyingPartyRow.id == party_id)
            .values(
                failed_verifications=case(
                    (lapsed, 1), else_=RelyingPartyRow.failed_verifications + 1
                ),
                failure_window_start=case(
                    (lapsed, now), else_=RelyingPartyRow.failure_window_start
                ),
            )
        )

    async def list_all(self) -> list[RelyingParty]:
        rows = await self._s.scalars(select(RelyingPartyRow).order_by(RelyingPartyRow.created_at))
        return [_to_domain(r) for r in rows]


def _to_domain(row: RelyingPartyRow) -> RelyingParty:
    scopes = frozenset(Attribute(v) for v in row.scopes.split(",") if v)
    return RelyingParty(id=row.id, name=row.name, scopes=scopes)
