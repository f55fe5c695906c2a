"""Alembic environment: runs migrations over an engine of the given URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from eid_service.store.database import create_engine
from eid_service.store.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


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
