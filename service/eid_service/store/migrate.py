"""Schema migrations (Alembic), run programmatically by `eid-server migrate`.
Servers only ask whether the schema is current (schema_version.py, without
Alembic)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from eid_service.store.database import normalise_url

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    url = normalise_url(database_url).render_as_string(hide_password=False)
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)
