"""Schema migrations (Alembic), run programmatically by `eid-server migrate`.
Servers only ask whether the schema is current (schema_version.py, without
Alembic)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.exc import DBAPIError

from eid_service.store.database import normalise_url

MIGRATIONS = Path(__file__).parent / "migrations"
# How long a PostgreSQL migration step waits for a table's lock (see env.py).
MIGRATION_LOCK_TIMEOUT_MS = 3_000
_LOCK_NOT_AVAILABLE = "55P03"


class MigrationBlocked(RuntimeError):
    """A table to alter stayed in use past MIGRATION_LOCK_TIMEOUT_MS."""


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    url = normalise_url(database_url).render_as_string(hide_password=False)
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(
    database_url: str, revision: str = "head", on_wait: Callable[[str], object] | None = None
) -> None:
    """Upgrades to `revision` in one transaction. `on_wait` hears (in words)
    that another migrate is running and this one waits for it."""
    cfg = alembic_config(database_url)
    cfg.attributes["on_wait"] = on_wait
    try:
        command.upgrade(cfg, revision)
    except DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
            raise
        raise MigrationBlocked(
            f"a table to migrate stayed in use for {MIGRATION_LOCK_TIMEOUT_MS / 1000:g} s"
            " (a long transaction: a server's, an operator's session); nothing was changed:"
            " run `eid-server migrate` again"
        ) from None
