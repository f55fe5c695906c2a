"""QR share grants; redemption is one conditional UPDATE so a token works once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CursorResult, update
from sqlalchemy.ext.asyncio import AsyncSession

from eid_service.domain.share import Attribute
from eid_service.domain.share_grant import ShareGrant
from eid_service.store.models import ShareRow


class ShareRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def add(self, grant: ShareGrant) -> None:
        self._s.add(
            ShareRow(
                id=grant.id,
                account_id=grant.account_id,
                attributes=",".join(sorted(a.value for a in grant.attributes)),
                audience_party_id=grant.audience_party_id,
                created_at=grant.created_at,
                expires_at=grant.expires_at,
            )
        )
        await self._s.flush()

    async def get(self, share_id: str) -> ShareGrant | None:
        row = await self._s.get(ShareRow, share_id)
        if row is None:
            return None
        return ShareGrant(
            id=row.id,
            account_id=row.account_id,
            attributes=frozenset(Attribute(v) for v in row.attributes.split(",") if v),
            audience_party_id=row.audience_party_id,
            created_at=row.created_at,
            expires_at=row.expires_at,
            redeemed_at=row.redeemed_at,
        )

    async def redeem(self, share_id: str, party_id: str, now: datetime) -> bool:
        result = await self._s.execute(
            update(ShareRow)
            .where(
                ShareRow.id == share_id,
                ShareRow.redeemed_at.is_(None),
                ShareRow.expires_at > now,
            )
            .values(redeemed_at=now, redeemed_by=party_id)
        )
        assert isinstance(result, CursorResult)
        return result.rowcount == 1
