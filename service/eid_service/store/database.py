"""Opening the two supported stores: SQLite (embedded) and PostgreSQL.

Both are driven through SQLAlchemy's synchronous engine on threads we own
(the stdlib sqlite3 driver, psycopg 3), never on the event loop. URLs that
name the asyncio drivers of earlier releases (`sqlite+aiosqlite`,
`postgresql+asyncpg`) are accepted and mean the same database.
"""

from __future__ import annotations

import select
import sqlite3
import sys
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError

from eid_service.domain.errors import Aborted, DomainError, Unavailable

SQLITE_BUSY_TIMEOUT_MS = 10_000
# How long a PostgreSQL statement waits for a row lock before it fails as
# STORE_BUSY, as SQLite's busy timeout. A session outside eid holding a row
# (an operator's open transaction) held a write, and its writer thread, for
# as long as it held the row: four such calls stopped a worker's writes.
POSTGRES_LOCK_TIMEOUT_MS = 10_000
# The writer threads (uow.POSTGRES_WRITERS) and the read threads (uow.READERS)
# each hold one connection.
POSTGRES_POOL_SIZE = 8


def normalise_url(url: str) -> URL:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite")
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")


def is_sqlite(url: str) -> bool:
    return normalise_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: str) -> str:
    return normalise_url(url).database or ""


def create_engine(
    url: str, *, pool_size: int = POSTGRES_POOL_SIZE, sqlite_reads: bool = False
) -> Engine:
    """A synchronous engine. SQLite: WAL, foreign keys, synchronous=FULL, and
    BEGIN IMMEDIATE transactions (plain BEGIN with `sqlite_reads`, for an
    engine that only reads)."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "postgresql":
        # synchronous_commit stays at its default (on): a commit is durable.
        engine = sa_create_engine(parsed, pool_size=pool_size, max_overflow=pool_size)
        _replace_ended_connections(engine)
        _bound_lock_waits(engine)
        return engine
    engine = sa_create_engine(parsed, connect_args={"check_same_thread": False})
    _configure_sqlite(engine, immediate=not sqlite_reads)
    return engine


def _bound_lock_waits(engine: Engine) -> None:
    """Every connection's lock_timeout, set once as it connects (the
    session's setting: no statement per transaction). Behind PgBouncer in
    transaction pooling, set it on the role instead (README)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"SET lock_timeout = {int(POSTGRES_LOCK_TIMEOUT_MS)}")
        dbapi_connection.commit()


def _replace_ended_connections(engine: Engine) -> None:
    """A pooled connection that PostgreSQL ended while it sat idle (the
    server stopped or restarted, or ended the session) is replaced when taken
    from the pool, instead of failing the transaction given it: the first
    call after the database comes back works. A server that ends a session
    says so (an error message, then the end of the stream), so the socket of
    an idle connection is readable: one poll(2), no round trip (SQLAlchemy's
    pool_pre_ping would send a query before every transaction)."""

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if _ended(dbapi_connection):
            # The pool discards it and connects anew (failing as
            # STORE_UNAVAILABLE if the database is still down).
            raise DisconnectionError("the database ended this pooled connection")


def _ended(connection: Any) -> bool:
    """Whether an idle psycopg connection is closed, broken, or has heard
    from the server (which an idle session never does unless it is ended)."""
    if connection.closed or connection.broken:
        return True
    poller = select.poll()
    try:
        poller.register(connection.fileno(), select.POLLIN)
    except (OSError, ValueError, _psycopg().Error):
        return True
    return bool(poller.poll(0))


def _configure_sqlite(engine: Engine, *, immediate: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Autocommit at the driver level: SQLAlchemy's "begin" event below
        # issues BEGIN itself, so we choose the kind of transaction.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # FULL: an acknowledged commit survives power loss, not only a crash.
        cursor.execute("PRAGMA synchronous=FULL")
        # Savepoint (statement) journals in memory: they only undo a rolled-back
        # savepoint inside a transaction, never after a crash (the WAL does),
        # and on disk a group commit past 64 KiB of them created, wrote and
        # deleted a temp file, on the event loop. A registry import's 100,000-
        # person batch holds up to ~80 MB of them meanwhile (measured: peak
        # 1.12 GB against 1.05 GB, no slower).
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _psycopg() -> Any:
    """psycopg if something loaded it (a PostgreSQL engine does); an SQLite
    server never imports it, which keeps about 20 MB out of every worker."""
    return sys.modules.get("psycopg")


def driver_integrity_errors() -> tuple[type[Exception], ...]:
    """Raised by the drivers themselves (repositories run SQL on them directly)."""
    psycopg = _psycopg()
    loaded = (psycopg.IntegrityError,) if psycopg is not None else ()
    return (sqlite3.IntegrityError, IntegrityError, *loaded)


def is_unique_violation(error: BaseException) -> bool:
    """A unique key taken (by a concurrent transaction); other integrity
    errors (NOT NULL, foreign keys) are defects, not races."""
    driver_error = error.orig if isinstance(error, DBAPIError) else error
    if isinstance(driver_error, sqlite3.IntegrityError):
        return "UNIQUE constraint failed" in str(driver_error)
    return getattr(driver_error, "sqlstate", None) == "23505"


# PostgreSQL's SQLSTATEs for a connection that failed or was ended by the
# server: class 08 (connection exception), and a server shutting down (57P01
# admin, 57P02 crash) or not yet accepting connections (57P03).
_GONE_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})
# Seconds a client should wait before retrying (RetryInfo): a restart takes longer.
STORE_UNAVAILABLE_RETRY_SECONDS = "1"


def store_unavailable() -> Unavailable:
    return Unavailable(
        reason="STORE_UNAVAILABLE",
        message="the database cannot be reached; retry shortly",
        metadata={"retry_after_seconds": STORE_UNAVAILABLE_RETRY_SECONDS},
    )


# What the drivers say when a database cannot be reached, in fixed words:
# their messages are never shown (one may quote a query or a row), but
# "nothing listens" and "no such database" send an operator to different places.
_UNREACHABLE_BECAUSE = (
    ("Connection refused", "nothing accepts connections there"),
    ("does not exist", "no such database or user"),
    ("password authentication failed", "the password was refused"),
    ("no pg_hba.conf entry", "the server does not accept this client (pg_hba.conf)"),
    ("could not translate host name", "unknown host name"),
    ("timeout expired", "no answer in time"),
    ("the database system is starting up", "the server is starting"),
    ("the database system is shutting down", "the server is stopping"),
    ("unable to open database file", "the file cannot be opened"),
)


def unreachable_reason(error: BaseException) -> str:
    """Why a database cannot be reached, for an operator: the driver's error
    type and, if it is one of the usual reasons, that reason in fixed words."""
    driver_error = getattr(error, "orig", None) or error
    kind = type(driver_error).__name__
    said = str(driver_error)
    for phrase, reason in _UNREACHABLE_BECAUSE:
        if phrase in said:
            return f"{kind}: {reason}"
    return kind


def _connection_lost(driver_error: BaseException | None, invalidated: bool) -> bool:
    """The database went away: the connection failed, was lost, or the server
    refuses connections while it stops or starts."""
    psycopg = _psycopg()
    if invalidated:  # SQLAlchemy saw a disconnect
        return True
    if psycopg is None or not isinstance(driver_error, psycopg.OperationalError):
        return False
    sqlstate = getattr(driver_error, "sqlstate", None)
    # No SQLSTATE: the driver's own (connection refused, lost or closed).
    return sqlstate is None or sqlstate.startswith("08") or sqlstate in _GONE_SQLSTATES


def store_error(error: BaseException) -> DomainError | None:
    """A store failure that is a condition of the service, as a domain error;
    None if it is a defect."""
    if isinstance(error, driver_integrity_errors()) and is_unique_violation(error):
        # A unique key taken by a concurrent call between our read and write.
        return Aborted(
            reason="CONCURRENT_REQUEST", message="a concurrent request changed the same data; retry"
        )
    driver_error = error.orig if isinstance(error, DBAPIError) else error
    invalidated = isinstance(error, DBAPIError) and error.connection_invalidated
    if _connection_lost(driver_error, invalidated):
        return store_unavailable()
    text = str(driver_error).lower()
    sqlstate = getattr(driver_error, "sqlstate", None)
    psycopg = _psycopg()
    # SQLite: busy timeout passed. PostgreSQL: serialization failure, deadlock,
    # or another operational condition of a database that is up (a lock not
    # available, a statement cancelled, out of connections).
    if (
        (isinstance(driver_error, sqlite3.OperationalError) and "database is locked" in text)
        or sqlstate in {"40001", "40P01"}
        or (psycopg is not None and isinstance(driver_error, psycopg.OperationalError))
    ):
        return Unavailable(reason="STORE_BUSY", message="the store is busy; retry shortly")
    return None
