"""A citizen's locks on single Verify modes: one row per locked mode. Verify
reads the lock with the account (AccountRepository.credential); these are
the citizen's own reads and writes. Each write is one statement on the
(account, mode) row, so concurrent calls about two modes never lose one."""

from __future__ import annotations

from datetime import datetime

from eid_service.domain.mode_locks import ModeLock
from eid_service.domain.party import VerifyMode
from eid_service.store.repositories.base import Repository
from eid_service.store.sql import Sql

_OF_ACCOUNT = Sql("SELECT mode, unlocked_until FROM verify_mode_locks WHERE account_id = :id")
# Sets the row, inserting it if absent (both SQLite and PostgreSQL speak this form).
_SET = Sql(
    "INSERT INTO verify_mode_locks (account_id, mode, locked_at, unlocked_until)"
    " VALUES (:id, :mode, :now, :until)"
    " ON CONFLICT (account_id, mode) DO UPDATE SET unlocked_until = excluded.unlocked_until"
)
_DELETE = Sql("DELETE FROM verify_mode_locks WHERE account_id = :id AND mode = :mode")


class ModeLockRepository(Repository):
    def of_account(self, account_id: str) -> list[ModeLock]:
        rows = self._db.all(_OF_ACCOUNT, {"id": account_id})
        return [ModeLock(VerifyMode(row[0]), self._db.read_time(row[1])) for row in rows]

    def lock(self, account_id: str, mode: VerifyMode, now: datetime) -> None:
        params = {"id": account_id, "mode": mode.value, "now": self._t(now), "until": None}
        self._db.count(_SET, params)

    def unlock(self, account_id: str, mode: VerifyMode, until: datetime | None) -> None:
        if until is None:
            self._db.count(_DELETE, {"id": account_id, "mode": mode.value})
            return
        # A row a temporary unlock inserts is locked from `until` on.
        at = self._t(until)
        self._db.count(_SET, {"id": account_id, "mode": mode.value, "now": at, "until": at})
