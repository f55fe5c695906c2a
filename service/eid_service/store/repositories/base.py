"""What every repository is built on: one connection inside one transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, CursorResult
from sqlalchemy.dialects import postgresql, sqlite

from eid_service.store.protection import DataProtection


class Repository:
    def __init__(self, connection: Connection, protection: DataProtection) -> None:
        self._c = connection
        self._p = protection

    def _upsert(self, table: Any) -> Any:
        """The dialect's INSERT ... ON CONFLICT construct for `table`."""
        if self._c.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    @property
    def _locks_rows(self) -> bool:
        # SQLite serialises writers; PostgreSQL needs SELECT ... FOR UPDATE.
        return self._c.dialect.name == "postgresql"


def rowcount(result: object) -> int:
    assert isinstance(result, CursorResult)
    return result.rowcount
