"""Citizen sessions: opaque bearer tokens stored only as keyed digests."""

from __future__ import annotations

from datetime import datetime

from eid_service.security.keyed_hash import new_secret_token
from eid_service.store.repositories.base import Repository
from eid_service.store.sql import Sql

SESSION_PURPOSE = "session"
SESSION_PREFIX = "eids"

_INSERT = Sql(
    "INSERT INTO sessions (token_digest, account_id, created_at, expires_at)"
    " VALUES (:digest, :account_id, :created_at, :expires_at)"
)
_ACCOUNT = Sql("SELECT account_id FROM sessions WHERE token_digest = :digest AND expires_at > :now")
_PURGE = Sql(
    "DELETE FROM sessions WHERE token_digest IN"
    " (SELECT token_digest FROM sessions WHERE expires_at <= :now LIMIT :limit)"
)


class SessionRepository(Repository):
    def open(self, account_id: str, now: datetime, expires_at: datetime) -> str:
        token = new_secret_token(SESSION_PREFIX)
        self._db.count(
            _INSERT,
            {
                "digest": self._p.hasher.digest(SESSION_PURPOSE, token),
                "account_id": account_id,
                "created_at": self._t(now),
                "expires_at": self._t(expires_at),
            },
        )
        return token

    def account_for(self, token: str, now: datetime) -> str | None:
        digest = self._p.hasher.digest(SESSION_PURPOSE, token)
        row = self._db.one(_ACCOUNT, {"digest": digest, "now": self._t(now)})
        return None if row is None else str(row[0])

    def purge_expired(self, now: datetime, limit: int) -> int:
        return self._db.count(_PURGE, {"now": self._t(now), "limit": limit})
