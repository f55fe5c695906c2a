"""Alembic environment: runs migrations over an engine of the given URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from eid_service.store.database import create_engine
from eid_service.store.migrate import MIGRATION_LOCK_TIMEOUT_MS
from eid_service.store.models import Base

config = context.config
target_metadata = Base.metadata

# Any constant both migrates agree on: PostgreSQL's advisory lock key of
# "a migration is running on this database".
MIGRATION_LOCK_KEY = 0x0E1D_5C4E
# A migrate waiting for another one holds no lock, so it may wait long; one
# that migrates takes the SQLite write lock for the whole upgrade.
SQLITE_MIGRATION_BUSY_TIMEOUT_MS = 600_000


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=sqlite,
        compare_type=True,
        # The whole upgrade is one transaction on SQLite too (its DDL is
        # transactional; Alembic assumes not and commits each step): another
        # migrate could otherwise take the write lock between two steps and
        # run the next one first, and the foreign key check below would come
        # after the commits.
        transactional_ddl=True,
    )
    with context.begin_transaction():
        if not sqlite:
            _take_migration_lock(connection)
            # A step that alters a table waits this long at most for the
            # transactions using it (servers of the previous version still
            # serve): every reader of that table queues behind the waiting
            # step meanwhile. Past it the upgrade fails and changes nothing.
            connection.execute(text(f"SET LOCAL lock_timeout = {int(MIGRATION_LOCK_TIMEOUT_MS)}"))
        context.run_migrations()


def _take_migration_lock(connection: Connection) -> None:
    """Two migrates at once (two hosts deploying) take turns: the second
    waits for the first's commit, then reads the revision it left (each
    statement of READ COMMITTED sees the latest commits) and has nothing or
    only the rest to do. Without this both read the old revision and the
    second failed on the first's tables. SQLite's BEGIN IMMEDIATE already
    lets one writer in at a time."""
    taken = text("SELECT pg_try_advisory_xact_lock(:key)")
    if connection.execute(taken, {"key": MIGRATION_LOCK_KEY}).scalar_one():
        return
    on_wait = config.attributes.get("on_wait")
    if on_wait is not None:
        on_wait("another `eid-server migrate` is running on this database: waiting for it")
    # The wait is for that migrate alone, however long it takes; the
    # connection's lock_timeout (for serving) would end it in seconds.
    connection.execute(text("SET LOCAL lock_timeout = 0"))
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})


def _run_online() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                _run_sqlite(connection)
            else:
                _run(connection)
                connection.commit()
    finally:
        engine.dispose()


def _run_sqlite(connection: Connection) -> None:
    """SQLite alters a column by rebuilding its table (batch mode: copy,
    drop, rename), and dropping a table other rows reference fails while
    foreign keys are enforced, even though the rebuilt table takes its place.
    So enforcement is off during the migrations (SQLite ignores the pragma
    inside a transaction: it is set before the first statement begins one),
    every foreign key is checked before the commit, and it is on again after."""
    raw = connection.connection.driver_connection
    assert raw is not None and not connection.in_transaction()
    raw.execute("PRAGMA foreign_keys=OFF")
    raw.execute(f"PRAGMA busy_timeout={SQLITE_MIGRATION_BUSY_TIMEOUT_MS}")
    try:
        _run(connection)
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
        if broken:
            tables = sorted({str(row[0]) for row in broken})
            raise RuntimeError(f"the migration broke foreign keys of {', '.join(tables)}")
        connection.commit()
    finally:
        if connection.in_transaction():
            connection.rollback()
        raw.execute("PRAGMA foreign_keys=ON")


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    _run_online()
