"""What every repository is built on: one transaction's driver connection."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eid_service.store.protection import DataProtection
from eid_service.store.sql import Driver


class Repository:
    __slots__ = ("_db", "_p")

    def __init__(self, db: Driver, protection: DataProtection) -> None:
        self._db = db
        self._p = protection

    def _t(self, value: datetime | None) -> Any:
        return self._db.time(value)

    @staticmethod
    def _read_t(value: Any) -> datetime:
        read = Driver.read_time(value)
        assert read is not None
        return read
