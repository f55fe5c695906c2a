"""Registration officers, their roles and their keys (stored only as keyed digests)."""

from __future__ import annotations

from datetime import datetime

from eid_service.domain.officer import DEFAULT_ROLES, Officer, OfficerRole, new_officer
from eid_service.security.keyed_hash import new_secret_token
from eid_service.store.repositories.base import Repository
from eid_service.store.sql import Sql
from eid_service.use_cases.ports import OfficerListing

OFFICER_KEY_PURPOSE = "officer-key"
OFFICER_KEY_PREFIX = "eido"

_INSERT = Sql(
    "INSERT INTO officers (id, name, key_digest, created_at, roles)"
    " VALUES (:id, :name, :digest, :created_at, :roles)"
)
_DISABLE = Sql("UPDATE officers SET disabled_at = :now WHERE id = :id AND disabled_at IS NULL")
_SET_ROLES = Sql("UPDATE officers SET roles = :roles WHERE id = :id AND disabled_at IS NULL")
_LIST = Sql("SELECT id, name, roles, created_at, disabled_at FROM officers ORDER BY created_at, id")
_BY_KEY = Sql(
    "SELECT id, name, roles FROM officers WHERE key_digest = :digest AND disabled_at IS NULL"
)


def _split(stored: object) -> frozenset[OfficerRole]:
    return frozenset(OfficerRole(v) for v in str(stored).split(",") if v)


def _join(roles: frozenset[OfficerRole]) -> str:
    return ",".join(sorted(r.value for r in roles))


class OfficerRepository(Repository):
    def create(
        self, name: str, now: datetime, roles: frozenset[OfficerRole] = DEFAULT_ROLES
    ) -> tuple[Officer, str]:
        officer = new_officer(name, roles)
        key = new_secret_token(OFFICER_KEY_PREFIX)
        self._db.count(
            _INSERT,
            {
                "id": officer.id,
                "name": officer.name,
                "digest": self._p.hasher.digest(OFFICER_KEY_PURPOSE, key),
                "created_at": self._t(now),
                "roles": _join(roles),
            },
        )
        return officer, key

    def by_key(self, key: str) -> Officer | None:
        row = self._db.one(_BY_KEY, {"digest": self._p.hasher.digest(OFFICER_KEY_PURPOSE, key)})
        if row is None:
            return None
        return Officer(str(row[0]), str(row[1]), _split(row[2]))

    def set_roles(self, officer_id: str, roles: frozenset[OfficerRole]) -> bool:
        return self._db.count(_SET_ROLES, {"id": officer_id, "roles": _join(roles)}) == 1

    def disable(self, officer_id: str, now: datetime) -> bool:
        return self._db.count(_DISABLE, {"id": officer_id, "now": self._t(now)}) == 1

    def list_all(self) -> list[OfficerListing]:
        return [
            OfficerListing(
                Officer(str(row[0]), str(row[1]), _split(row[2])),
                self._read_t(row[3]),
                None if row[4] is None else self._read_t(row[4]),
            )
            for row in self._db.all(_LIST, {})
        ]
