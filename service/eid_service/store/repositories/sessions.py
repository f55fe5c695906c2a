"""Citizen sessions: opaque bearer tokens stored only as keyed digests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select

from eid_service.security.keyed_hash import new_secret_token
from eid_service.store.models import SessionRow
from eid_service.store.repositories.base import Repository, rowcount

SESSION_PURPOSE = "session"
SESSION_PREFIX = "eids"


class SessionRepository(Repository):
    def open(self, account_id: str, now: datetime, expires_at: datetime) -> str:
        token = new_secret_token(SESSION_PREFIX)
        self._c.execute(
            insert(SessionRow).values(
                token_digest=self._p.hasher.digest(SESSION_PURPOSE, token),
                account_id=account_id,
                created_at=now,
                expires_at=expires_at,
            )
        )
        return token

    def account_for(self, token: str, now: datetime) -> str | None:
        digest = self._p.hasher.digest(SESSION_PURPOSE, token)
        return self._c.scalar(
            select(SessionRow.account_id).where(
                SessionRow.token_digest == digest, SessionRow.expires_at > now
            )
        )

    def purge_expired(self, now: datetime) -> int:
        return rowcount(self._c.execute(delete(SessionRow).where(SessionRow.expires_at <= now)))
