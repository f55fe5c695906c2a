"""Unit of work: one database transaction, rolled back unless committed."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncSession

from eid_service.store.database import SessionFactory
from eid_service.store.protection import DataProtection
from eid_service.store.repositories.accounts import AccountRepository, ActivationCodeRepository
from eid_service.store.repositories.audit import AuditLog
from eid_service.store.repositories.idempotency import IdempotencyRepository
from eid_service.store.repositories.outbox import OutboxRepository
from eid_service.store.repositories.parties import RelyingPartyRepository
from eid_service.store.repositories.registry import PopulationRegistry
from eid_service.store.repositories.sessions import SessionRepository
from eid_service.store.repositories.shares import ShareRepository


class UnitOfWork:
    """`async with uow:` opens a transaction; leaving without `commit()` rolls it back.

    Use cases commit only to keep a failure's bookkeeping (e.g. a counted
    wrong guess) before raising; success is committed by the API edge so that
    the idempotency record lands in the same transaction.
    """

    def __init__(self, sessions: SessionFactory, protection: DataProtection) -> None:
        self._sessions = sessions
        self._protection = protection
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> UnitOfWork:
        session = self._sessions()
        p = self._protection
        self._session = session
        self.registry = PopulationRegistry(session, p)
        self.accounts = AccountRepository(session, p)
        self.activation_codes = ActivationCodeRepository(session, p)
        self.parties = RelyingPartyRepository(session, p)
        self.sessions = SessionRepository(session, p)
        self.shares = ShareRepository(session)
        self.outbox = OutboxRepository(session, p)
        self.idempotency = IdempotencyRepository(session, p)
        self.audit = AuditLog(session, p)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self._require_session()
        try:
            await session.rollback()
        finally:
            await session.close()
            self._session = None

    async def commit(self) -> None:
        await self._require_session().commit()

    async def rollback(self) -> None:
        await self._require_session().rollback()

    def _require_session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("unit of work used outside `async with`")
        return self._session
