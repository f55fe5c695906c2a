"""Citizen sessions: opaque bearer tokens stored only as keyed digests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from eid_service.security.keyed_hash import new_secret_token
from eid_service.store.models import SessionRow
from eid_service.store.protection import DataProtection

SESSION_PURPOSE = "session"
SESSION_PREFIX = "eids"


class SessionRepository:
    def __init__(self, session: AsyncSession, protection: DataProtection) -> None:
        self._s = session
        self._p = protection

    async def open(self, account_id: str, now: datetime, expires_at: datetime) -> str:
        token = new_secret_token(SESSION_PREFIX)
        self._s.add(
            SessionRow(
                token_digest=self._p.hasher.digest(SESSION_PURPOSE, token),
                account_id=account_id,
                created_at=now,
                expires_at=expires_at,
            )
        )
        await self._s.flush()
        return token

    async def account_for(self, token: str, now: datetime) -> str | None:
        """The account a live session belongs to, or None."""
        digest = self._p.hasher.digest(SESSION_PURPOSE, token)
        return await self._s.scalar(
            select(SessionRow.account_id).where(
                SessionRow.token_digest == digest, SessionRow.expires_at > now
            )
        )
