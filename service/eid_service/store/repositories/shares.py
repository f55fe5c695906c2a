"""QR share grants; redemption is one conditional UPDATE ... RETURNING, so a
token works once, only before its expiry and only for its audience."""

from __future__ import annotations

from datetime import datetime

from eid_service.domain.share import Attribute
from eid_service.domain.share_grant import ShareGrant
from eid_service.store.repositories.base import Repository
from eid_service.store.sql import Sql
from eid_service.use_cases.ports import RedeemedShare

_INSERT = Sql(
    "INSERT INTO shares (id, account_id, attributes, audience_party_id, created_at, expires_at)"
    " VALUES (:id, :account_id, :attributes, :audience, :created_at, :expires_at)"
)
_REDEEM = Sql(
    "UPDATE shares SET redeemed_at = :now, redeemed_by = :party_id"
    " WHERE id = :id AND redeemed_at IS NULL AND revoked_at IS NULL AND expires_at > :now"
    " AND (audience_party_id IS NULL OR audience_party_id = :party_id)"
    " RETURNING account_id, attributes"
)
_REVOKE_ALL = Sql(
    "UPDATE shares SET revoked_at = :now WHERE account_id = :account_id"
    " AND redeemed_at IS NULL AND revoked_at IS NULL AND expires_at > :now"
)
_GET = Sql(
    "SELECT id, account_id, attributes, audience_party_id, created_at, expires_at, redeemed_at,"
    " revoked_at FROM shares WHERE id = :id"
)
_PURGE = Sql(
    "DELETE FROM shares WHERE id IN"
    " (SELECT id FROM shares WHERE expires_at <= :before LIMIT :limit)"
)


def _attributes(text: str) -> frozenset[Attribute]:
    return frozenset(Attribute(v) for v in text.split(",") if v)


class ShareRepository(Repository):
    def add(self, grant: ShareGrant) -> None:
        self._db.count(
            _INSERT,
            {
                "id": grant.id,
                "account_id": grant.account_id,
                "attributes": ",".join(sorted(a.value for a in grant.attributes)),
                "audience": grant.audience_party_id,
                "created_at": self._t(grant.created_at),
                "expires_at": self._t(grant.expires_at),
            },
        )

    def redeem(self, share_id: str, party_id: str, now: datetime) -> RedeemedShare | None:
        row = self._db.one(_REDEEM, {"id": share_id, "party_id": party_id, "now": self._t(now)})
        return None if row is None else RedeemedShare(share_id, row[0], _attributes(row[1]))

    def revoke_all(self, account_id: str, now: datetime) -> int:
        return self._db.count(_REVOKE_ALL, {"account_id": account_id, "now": self._t(now)})

    def get(self, share_id: str) -> ShareGrant | None:
        row = self._db.one(_GET, {"id": share_id})
        if row is None:
            return None
        return ShareGrant(
            id=row[0],
            account_id=row[1],
            attributes=_attributes(row[2]),
            audience_party_id=row[3],
            created_at=self._read_t(row[4]),
            expires_at=self._read_t(row[5]),
            redeemed_at=None if row[6] is None else self._read_t(row[6]),
            revoked_at=None if row[7] is None else self._read_t(row[7]),
        )

    def purge_expired(self, before: datetime, limit: int) -> int:
        return self._db.count(_PURGE, {"before": self._t(before), "limit": limit})
