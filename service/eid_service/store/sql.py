"""Statements run on the database driver itself.

Repositories run on the hot path of every call, inside the SQLite writer
thread's group commits; building and compiling SQLAlchemy expressions cost
about 100 µs a statement there, the driver about 5 (measured; see README,
Capacity). So repositories write their SQL once, with `:name` parameters,
and run it on the DB-API connection of the SQLAlchemy transaction they are
in (sqlite3 or psycopg), while SQLAlchemy keeps the engines, pools,
transactions, savepoints, the schema (models.py) and the migrations.

The one thing the drivers disagree on, besides the parameter style, is time:
SQLite stores SQLAlchemy's text form of a UTC datetime, PostgreSQL a
`timestamptz`. `Driver.time` and `Driver.read_time` speak both.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

_NAMED = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")

Params = dict[str, Any]
Row = tuple[Any, ...]
# Told the text of each statement run (no parameters): for tests and tracing.
Observer = Callable[[str], None]


class Sql:
    """One statement, in each driver's parameter style."""

    __slots__ = ("postgres", "sqlite")

    def __init__(self, text: str) -> None:
        # Values travel as parameters only: no literals, which the rewrite
        # below could corrupt, and no "%", which psycopg would read.
        if "'" in text or "%" in text:
            raise ValueError("no literals or % in statements: pass values as :parameters")
        self.sqlite = " ".join(text.split())
        self.postgres = _NAMED.sub(r"%(\1)s", self.sqlite)


class Rows:
    """One statement with `?` placeholders, run once per tuple (executemany):
    bulk loads, where a dict per row would cost more than the row."""

    __slots__ = ("postgres", "sqlite")

    def __init__(self, text: str) -> None:
        if "'" in text or "%" in text or ":" in text:
            raise ValueError("no literals, % or :names in a Rows statement: use ? placeholders")
        self.sqlite = " ".join(text.split())
        self.postgres = self.sqlite.replace("?", "%s")


class Driver:
    """Runs `Sql` on the driver connection under a SQLAlchemy connection."""

    __slots__ = ("_observe", "_raw", "postgres")

    def __init__(self, connection: Connection, observe: Observer | None = None) -> None:
        self.postgres = connection.dialect.name == "postgresql"
        self._raw: Any = connection.connection.driver_connection
        self._observe = observe

    def _run(self, sql: Sql, params: Params) -> Any:
        if self._observe is not None:
            self._observe(sql.sqlite)
        return self._raw.execute(sql.postgres if self.postgres else sql.sqlite, params)

    def one(self, sql: Sql, params: Params) -> Row | None:
        row: Row | None = self._run(sql, params).fetchone()
        return row

    def all(self, sql: Sql, params: Params) -> list[Row]:
        rows: list[Row] = self._run(sql, params).fetchall()
        return rows

    def count(self, sql: Sql, params: Params) -> int:
        """Runs a write; the number of rows it changed."""
        changed: int = self._run(sql, params).rowcount
        return changed

    def many(self, sql: Rows, rows: Sequence[Sequence[Any]]) -> int:
        """Runs a write once per row; the number of rows it changed in all."""
        if not rows:
            return 0
        if self._observe is not None:
            self._observe(sql.sqlite)
        if self.postgres:
            with self._raw.cursor() as cursor:
                cursor.executemany(sql.postgres, rows)
                changed: int = cursor.rowcount
                return changed
        written: int = self._raw.executemany(sql.sqlite, rows).rowcount
        return written

    def time(self, value: datetime | None) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        utc = value if value.tzinfo is UTC else value.astimezone(UTC)
        if self.postgres:
            return utc
        # What SQLAlchemy's SQLite DateTime writes ("2026-11-24 04:15:40.256000"),
        # so rows written either way compare as text: the UTC text without its
        # "+00:00" (cheaper than a naive copy; several a call).
        return utc.isoformat(" ", "microseconds")[:-6]

    @staticmethod
    def read_time(value: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
