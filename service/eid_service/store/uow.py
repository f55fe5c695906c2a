"""Unit of work: database transactions, rolled back unless committed.

A unit of work starts by reading. Before its first write a use case calls
`start_writing()`; reads done before it may be stale by then, which is why
single-use and counted things change only through conditional UPDATEs. Slow
work (Argon2id) belongs before `start_writing()`, so no write lock waits on it.
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncSession

from eid_service.store.database import Database
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
    """`async with uow:`; leaving without `commit()` rolls back.

    Use cases commit only to keep a failure's bookkeeping (e.g. a counted
    wrong guess) before raising; success is committed by the API edge so that
    the idempotency record lands in the same transaction.
    """

    def __init__(self, database: Database, protection: DataProtection) -> None:
        self._db = database
        self._protection = protection
        self._session: AsyncSession | None = None
        self._writing = False
        self._holds_lock = False

    async def __aenter__(self) -> UnitOfWork:
        factory = self._db.read_sessions() if self._db.separate_reads else self._db.sessions()
        self._bind(factory())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._close_session()
        finally:
            self._release_lock()

    async def start_writing(self) -> None:
        """Switches to a write transaction (a no-op when already writing).

        On SQLite this waits for the process's write turn, then opens a
        BEGIN IMMEDIATE transaction; objects read before are not refreshed."""
        if self._writing:
            return
        self._writing = True
        if not self._db.separate_reads:
            return
        if self._db.write_lock is not None:
            await self._db.write_lock.acquire()
            self._holds_lock = True
        await self._close_session()
        self._bind(self._db.sessions()())

    async def commit_and_read(self) -> None:
        """Commits the write phase and goes back to reading, giving up the
        write turn: for bookkeeping that must land before slow work."""
        await self.commit()
        if not self._writing:
            return
        self._writing = False
        if not self._db.separate_reads:
            return
        await self._close_session()
        self._release_lock()
        self._bind(self._db.read_sessions()())

    async def commit(self) -> None:
        await self._require_session().commit()

    async def rollback(self) -> None:
        await self._require_session().rollback()

    def _bind(self, session: AsyncSession) -> None:
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

    async def _close_session(self) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        try:
            await session.rollback()
        finally:
            await session.close()

    def _release_lock(self) -> None:
        if self._holds_lock and self._db.write_lock is not None:
            self._db.write_lock.release()
        self._holds_lock = False

    def _require_session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("unit of work used outside `async with`")
        return self._session
