"""QR share grants; redemption is one conditional UPDATE ... RETURNING, so a
token works once, only before its expiry and only for its audience."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, or_, select, update

from eid_service.domain.share import Attribute
from eid_service.domain.share_grant import ShareGrant
from eid_service.store.models import ShareRow
from eid_service.store.repositories.base import Repository, rowcount
from eid_service.use_cases.ports import RedeemedShare


def _attributes(text: str) -> frozenset[Attribute]:
    return frozenset(Attribute(v) for v in text.split(",") if v)


class ShareRepository(Repository):
    def add(self, grant: ShareGrant) -> None:
        self._c.execute(
            insert(ShareRow).values(
                id=grant.id,
                account_id=grant.account_id,
                attributes=",".join(sorted(a.value for a in grant.attributes)),
                audience_party_id=grant.audience_party_id,
                created_at=grant.created_at,
                expires_at=grant.expires_at,
            )
        )

    def redeem(self, share_id: str, party_id: str, now: datetime) -> RedeemedShare | None:
        row = self._c.execute(
            update(ShareRow)
            .where(
                ShareRow.id == share_id,
                ShareRow.redeemed_at.is_(None),
                ShareRow.expires_at > now,
                or_(ShareRow.audience_party_id.is_(None), ShareRow.audience_party_id == party_id),
            )
            .values(redeemed_at=now, redeemed_by=party_id)
            .returning(ShareRow.account_id, ShareRow.attributes)
        ).first()
        return None if row is None else RedeemedShare(share_id, row[0], _attributes(row[1]))

    def get(self, share_id: str) -> ShareGrant | None:
        row = self._c.execute(select(ShareRow).where(ShareRow.id == share_id)).mappings().first()
        if row is None:
            return None
        return ShareGrant(
            id=row["id"],
            account_id=row["account_id"],
            attributes=_attributes(row["attributes"]),
            audience_party_id=row["audience_party_id"],
            created_at=row["created_at"],
            expires_at=row["expires_at"],
            redeemed_at=row["redeemed_at"],
        )

    def purge_expired(self, before: datetime) -> int:
        return rowcount(self._c.execute(delete(ShareRow).where(ShareRow.expires_at <= before)))
