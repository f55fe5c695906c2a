"""The unit of work over SQLAlchemy: the one place transactions begin and commit.

SQLite: writes go to the process's writer (writer.py), which group-commits
them durably, running their statements on the event loop and only the
commit on a thread. PostgreSQL: each write transaction runs on one of a few
writer threads and commits on its own; the server flushes concurrent
commits together, and a transaction stuck on a row lock holds up only
itself. Few threads, because more mostly wait on the GIL (measured with
calls about 8 citizens: 4 threads served 1.2-1.4x the redemptions 2 did,
6 to 12 fewer again than 4; 16 threads served 0.6x what 2 did). Reads run on a small
pool of read connections (on SQLite, WAL lets them proceed beside the
writer). A transaction function runs to the end once it has started: a
cancelled caller stops waiting, its transaction is still committed or
rolled back whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import Connection

from eid_service.domain.errors import Conflict
from eid_service.store.database import (
    create_engine,
    driver_integrity_errors,
    is_sqlite,
    is_unique_violation,
    sqlite_path,
)
from eid_service.store.protection import DataProtection
from eid_service.store.repositories.account_biometrics import AccountBiometricsRepository
from eid_service.store.repositories.account_documents import AccountDocumentRepository
from eid_service.store.repositories.accounts import AccountRepository
from eid_service.store.repositories.activation_codes import ActivationCodeRepository
from eid_service.store.repositories.approvals import ApprovalRepository
from eid_service.store.repositories.attempts import CredentialAttemptRepository
from eid_service.store.repositories.audit import AuditLog
from eid_service.store.repositories.dependants import DependantRepository
from eid_service.store.repositories.idempotency import IdempotencyRepository
from eid_service.store.repositories.mode_locks import ModeLockRepository
from eid_service.store.repositories.officers import OfficerRepository
from eid_service.store.repositories.outbox import OutboxRepository
from eid_service.store.repositories.parties import RelyingPartyRepository
from eid_service.store.repositories.rate_buckets import RateBucketRepository
from eid_service.store.repositories.rate_limits import RateLimitRepository
from eid_service.store.repositories.receipts import ReceiptRepository
from eid_service.store.repositories.registry import PopulationRegistry
from eid_service.store.repositories.sealed_blobs import SealedBlobs
from eid_service.store.repositories.sessions import SessionRepository
from eid_service.store.repositories.shares import ShareRepository
from eid_service.store.repositories.signing_keys import SigningKeyRepository
from eid_service.store.repositories.webhooks import PartyWebhookRepository
from eid_service.store.sql import Driver, Observer
from eid_service.store.writer import SqliteWriter
from eid_service.telemetry import spans
from eid_service.use_cases.ports import Repositories

T = TypeVar("T")
# Transactions in flight per process (more threads mostly wait on the GIL).
READERS = 4
POSTGRES_WRITERS = 4


class SqlRepositories:
    """The repositories of one transaction, over one driver connection. Made
    for every transaction on the hot path, so made plainly: no lazy lookups."""

    __slots__ = (
        "account_documents",
        "accounts",
        "activation_codes",
        "approvals",
        "attempts",
        "audit",
        "biometrics",
        "dependants",
        "idempotency",
        "mode_locks",
        "officers",
        "outbox",
        "parties",
        "rate_buckets",
        "rate_limits",
        "receipts",
        "registry",
        "sealed_blobs",
        "sessions",
        "shares",
        "signing_keys",
        "webhooks",
    )

    def __init__(
        self, connection: Connection, protection: DataProtection, observe: Observer | None
    ) -> None:
        db = Driver(connection, observe)
        self.registry = PopulationRegistry(db, protection)
        self.accounts = AccountRepository(db, protection)
        self.activation_codes = ActivationCodeRepository(db, protection)
        self.parties = RelyingPartyRepository(db, protection)
        self.sessions = SessionRepository(db, protection)
        self.shares = ShareRepository(db, protection)
        self.outbox = OutboxRepository(db, protection)
        self.idempotency = IdempotencyRepository(db, protection)
        self.audit = AuditLog(db, protection)
        self.attempts = CredentialAttemptRepository(db, protection)
        self.rate_limits = RateLimitRepository(db, protection)
        self.rate_buckets = RateBucketRepository(db, protection)
        self.officers = OfficerRepository(db, protection)
        self.signing_keys = SigningKeyRepository(db, protection)
        self.receipts = ReceiptRepository(db, protection)
        self.approvals = ApprovalRepository(db, protection)
        self.mode_locks = ModeLockRepository(db, protection)
        self.webhooks = PartyWebhookRepository(db, protection)
        self.biometrics = AccountBiometricsRepository(db, protection)
        self.dependants = DependantRepository(db, protection)
        self.account_documents = AccountDocumentRepository(db, protection)
        # Store-level (rotate-keys), not a port of the use cases.
        self.sealed_blobs = SealedBlobs(db, protection)


class SqlUnitOfWork:
    """Implements use_cases.ports.UnitOfWork for one process."""

    def __init__(self, url: str, protection: DataProtection) -> None:
        self.url = url
        self.protection = protection
        self.engine = create_engine(url)
        self._writer: SqliteWriter | None = None
        self._writers: ThreadPoolExecutor | None = None
        if is_sqlite(url):
            self.read_engine = create_engine(url, sqlite_reads=True)
            self._writer = SqliteWriter(self.engine, sqlite_path(url) + ".writelock")
        else:
            self.read_engine = self.engine
            self._writers = ThreadPoolExecutor(POSTGRES_WRITERS, thread_name_prefix="eid-write")
        self._threads = ThreadPoolExecutor(READERS, thread_name_prefix="eid-store")
        # Told each statement's text as it runs (tests count them).
        self.observe: Observer | None = None
        # A span per transaction, not per statement: a statement costs about
        # 5 µs on the driver, a span more; the transaction's span covers its
        # wait for the writer and the group commit, as the caller lives it.
        system = "postgresql" if self._writer is None else "sqlite"
        self._write_span = {"db.system.name": system, "db.operation.name": "write"}
        self._read_span = {"db.system.name": system, "db.operation.name": "read"}

    @property
    def group_commits(self) -> int:
        """Durable commits made by the SQLite writer (0 on PostgreSQL)."""
        return 0 if self._writer is None else self._writer.batches

    async def atomically(self, work: Callable[[Repositories], T], *, long: bool = False) -> T:
        with spans.span("eid.db.write", self._write_span):
            # Wherever the writer runs it, in this call's trace (a
            # signature's span is a child of this one).
            work = spans.carry(work)
            if self._writer is not None:
                result: T = await self._writer.run(lambda c: self._guarded(work, c), long=long)
                return result
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._writers, self._write_now, work)

    def _write_now(self, work: Callable[[Repositories], T]) -> T:
        with self.engine.begin() as connection:
            return self._guarded(work, connection)

    def _repositories(self, connection: Connection) -> SqlRepositories:
        """The repositories over this pooled connection's driver connection,
        made once per connection (they hold nothing else) rather than per
        transaction."""
        key = (id(self), self.observe)
        made = connection.info.get("eid.repositories")
        if made is None or made[0] != key:
            made = connection.info["eid.repositories"] = (
                key,
                SqlRepositories(connection, self.protection, self.observe),
            )
        repositories: SqlRepositories = made[1]
        return repositories

    def _guarded(self, work: Callable[[Repositories], T], connection: Connection) -> T:
        try:
            return work(self._repositories(connection))
        except driver_integrity_errors() as taken:
            if not is_unique_violation(taken):
                raise
            # A unique key a concurrent transaction committed first.
            raise Conflict() from taken

    async def read(self, work: Callable[[Repositories], T]) -> T:
        with spans.span("eid.db.read", self._read_span):
            work = spans.carry(work)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._threads, self._read_now, work)

    def _read_now(self, work: Callable[[Repositories], T]) -> T:
        with self.read_engine.connect() as connection, connection.begin():
            return work(self._repositories(connection))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._writers is not None:
            self._writers.shutdown(wait=True)
        self._threads.shutdown(wait=True)
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()
