"""Opening the two supported stores: SQLite (embedded) and PostgreSQL.

SQLite allows one writer at a time and cannot wait for a read transaction
to turn into a write one, so on SQLite a unit of work reads in a deferred
transaction and writes in a separate BEGIN IMMEDIATE transaction, with one
writer per process queued on an asyncio lock rather than on SQLite's
sleeping busy handler. PostgreSQL needs none of this."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from eid_service.domain.errors import DomainError, Unavailable

SessionFactory = async_sessionmaker[AsyncSession]

SQLITE_BUSY_TIMEOUT_MS = 10_000


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, pool_size: int = 10, immediate: bool = True) -> AsyncEngine:
    """An async engine; on SQLite with WAL and foreign keys, and BEGIN IMMEDIATE
    transactions unless `immediate` is False (read-only use)."""
    if not is_sqlite(url):
        return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size)
    engine = create_async_engine(url)
    _configure_sqlite(engine, immediate=immediate)
    return engine


def _configure_sqlite(engine: AsyncEngine, *, immediate: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy own BEGIN, so that we choose its kind below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # FULL: an acknowledged commit survives power loss, not only a crash.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@dataclass
class Database:
    """The engines and session factories of one store, for one process."""

    url: str
    engine: AsyncEngine
    read_engine: AsyncEngine
    # SQLite only: the process's turn to write.
    write_lock: asyncio.Lock | None = field(default=None)

    @property
    def separate_reads(self) -> bool:
        return self.read_engine is not self.engine

    def sessions(self) -> SessionFactory:
        return async_sessionmaker(self.engine, expire_on_commit=False)

    def read_sessions(self) -> SessionFactory:
        return async_sessionmaker(self.read_engine, expire_on_commit=False)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.separate_reads:
            await self.read_engine.dispose()


def open_database(url: str) -> Database:
    engine = create_engine(url)
    if not is_sqlite(url):
        return Database(url, engine, engine)
    return Database(url, engine, create_engine(url, immediate=False), asyncio.Lock())


def transient_store_error(error: BaseException) -> DomainError | None:
    """A retryable store failure as a domain error, or None if it is not one."""
    if not isinstance(error, DBAPIError):
        return None
    text = str(error.orig).lower() if error.orig is not None else ""
    # SQLite: busy timeout passed. PostgreSQL: deadlock or serialization failure.
    sqlstate = getattr(error.orig, "sqlstate", None)
    if "database is locked" in text or sqlstate in {"40001", "40P01"}:
        return Unavailable(reason="STORE_BUSY", message="the store is busy; retry shortly")
    return None
