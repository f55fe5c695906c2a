"""Statements run straight on a database by URL, outside eid: to write rows
as an older release did, or read what is really stored."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from eid_service.store.database import create_engine


def run_sql(url: str, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """Runs one statement in its own committed transaction; its rows, if any."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            result = connection.execute(text(sql), params or {})
            return [tuple(r) for r in result.all()] if result.returns_rows else []
    finally:
        engine.dispose()
