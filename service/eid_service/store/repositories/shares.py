"""QR share grants; redemption is one conditional UPDATE ... RETURNING, so a
single-use share works once, only before its expiry and only for its audience."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eid_service.domain.share import Attribute, ShareMode
from eid_service.domain.share_grant import ShareGrant
from eid_service.store.repositories.base import Repository
from eid_service.store.sql import Sql
from eid_service.use_cases.ports import RedeemedShare

_COLUMNS = (
    "id, account_id, attributes, audience_party_id, created_at, expires_at, redeemed_at,"
    " revoked_at, mode, multi_use, redeem_count, last_redeemed_at, issued_by"
)
_INSERT = Sql(
    "INSERT INTO shares (id, account_id, attributes, audience_party_id, created_at, expires_at,"
    " mode, multi_use, issued_by) VALUES (:id, :account_id, :attributes, :audience,"
    " :created_at, :expires_at, :mode, :multi_use, :issued_by)"
)
# The first redemption is remembered (redeemed_at, redeemed_by); every one counts.
_REDEEM = Sql(
    "UPDATE shares SET redeemed_at = COALESCE(redeemed_at, :now),"
    " redeemed_by = COALESCE(redeemed_by, :party_id), redeem_count = redeem_count + 1,"
    " last_redeemed_at = :now"
    " WHERE id = :id AND (redeemed_at IS NULL OR multi_use) AND revoked_at IS NULL"
    " AND expires_at > :now AND (audience_party_id IS NULL OR audience_party_id = :party_id)"
    " RETURNING account_id, attributes, issued_by"
)
_REVOKE_ALL = Sql(
    "UPDATE shares SET revoked_at = :now WHERE account_id = :account_id"
    " AND (redeemed_at IS NULL OR multi_use) AND revoked_at IS NULL AND expires_at > :now"
)
_REVOKE_ISSUED_BY = Sql(
    "UPDATE shares SET revoked_at = :now WHERE issued_by = :account_id"
    " AND (redeemed_at IS NULL OR multi_use) AND revoked_at IS NULL AND expires_at > :now"
)
# Only a share that could still be redeemed: an expired or used-up one keeps
# its state (revoking it answers it as it is).
_REVOKE = Sql(
    "UPDATE shares SET revoked_at = :now WHERE id = :id AND account_id = :account_id"
    " AND (redeemed_at IS NULL OR multi_use) AND revoked_at IS NULL AND expires_at > :now"
)
_GET = Sql(f"SELECT {_COLUMNS} FROM shares WHERE id = :id")  # noqa: S608 (constants)
_OF_ACCOUNT = f"SELECT {_COLUMNS} FROM shares WHERE account_id = :account_id"  # noqa: S608
_NEWEST_FIRST = " ORDER BY created_at DESC, id DESC LIMIT :limit"
# The cursor's row is looked for among the caller's own: another's tells nothing.
_CURSOR = "SELECT created_at FROM shares WHERE id = :after AND account_id = :account_id"
_AFTER = f" AND (created_at < ({_CURSOR}) OR (created_at = ({_CURSOR}) AND id < :after))"
_PAGE_FIRST = Sql(_OF_ACCOUNT + _NEWEST_FIRST)
_PAGE_AFTER = Sql(_OF_ACCOUNT + _AFTER + _NEWEST_FIRST)
_PURGE = Sql(
    "DELETE FROM shares WHERE id IN"
    " (SELECT id FROM shares WHERE expires_at <= :before LIMIT :limit)"
)


_ATTRIBUTES = {a.value: a for a in Attribute}


def _attributes(text: str) -> frozenset[Attribute]:
    # A dict, not Attribute(v): every redemption reads a share's attributes.
    return frozenset([_ATTRIBUTES[v] for v in text.split(",") if v])


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
                "mode": grant.mode.value,
                "multi_use": grant.multi_use,
                "issued_by": grant.issued_by,
            },
        )

    def redeem(self, share_id: str, party_id: str, now: datetime) -> RedeemedShare | None:
        row = self._db.one(_REDEEM, {"id": share_id, "party_id": party_id, "now": self._t(now)})
        if row is None:
            return None
        return RedeemedShare(share_id, row[0], _attributes(row[1]), row[2])

    def revoke_all(self, account_id: str, now: datetime) -> int:
        return self._db.count(_REVOKE_ALL, {"account_id": account_id, "now": self._t(now)})

    def revoke_issued_by(self, account_id: str, now: datetime) -> int:
        return self._db.count(_REVOKE_ISSUED_BY, {"account_id": account_id, "now": self._t(now)})

    def revoke(self, share_id: str, account_id: str, now: datetime) -> ShareGrant | None:
        self._db.count(_REVOKE, {"id": share_id, "account_id": account_id, "now": self._t(now)})
        grant = self.get(share_id)
        return grant if grant is not None and grant.account_id == account_id else None

    def get(self, share_id: str) -> ShareGrant | None:
        row = self._db.one(_GET, {"id": share_id})
        return None if row is None else self._grant(row)

    def page_of(self, account_id: str, after: str | None, limit: int) -> list[ShareGrant]:
        params = {"account_id": account_id, "after": after, "limit": limit}
        rows = self._db.all(_PAGE_FIRST if after is None else _PAGE_AFTER, params)
        return [self._grant(row) for row in rows]

    def _grant(self, row: tuple[Any, ...]) -> ShareGrant:
        return ShareGrant(
            id=row[0],
            account_id=row[1],
            attributes=_attributes(row[2]),
            audience_party_id=row[3],
            created_at=self._read_t(row[4]),
            expires_at=self._read_t(row[5]),
            redeemed_at=None if row[6] is None else self._read_t(row[6]),
            revoked_at=None if row[7] is None else self._read_t(row[7]),
            mode=ShareMode(row[8]),
            multi_use=bool(row[9]),
            redeem_count=int(row[10]),
            last_redeemed_at=None if row[11] is None else self._read_t(row[11]),
            issued_by=row[12],
        )

    def purge_expired(self, before: datetime, limit: int) -> int:
        return self._db.count(_PURGE, {"before": self._t(before), "limit": limit})
