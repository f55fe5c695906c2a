"""Children's accounts under a guardian's (domain/dependant.py): an account
row (AccountRepository writes and reads it) plus the guardian link columns.
The day a child turns 14 is kept only as a keyed index, so the coming-of-age
sweep finds a day's children by equality without any birth date in clear."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from eid_service.domain.account import AccountState
from eid_service.domain.dependant import Dependant, take_over_date
from eid_service.store.protection import DataProtection
from eid_service.store.repositories.accounts import ACCOUNT_COLUMNS, AccountRepository
from eid_service.store.repositories.base import Repository
from eid_service.store.sql import Driver, Row, Sql
from eid_service.use_cases.ports import Subject

TAKE_OVER_INDEX_PURPOSE = "take-over-day"
_ACCOUNT_FIELDS = len(ACCOUNT_COLUMNS.split(","))
_COLUMNS = f"{ACCOUNT_COLUMNS}, guardian_account_id, of_age_notified_at, taken_over_at"
_LINK = Sql(
    "UPDATE accounts SET guardian_account_id = :guardian, take_over_index = :day WHERE id = :id"
)
_GET = Sql(
    f"SELECT {_COLUMNS} FROM accounts"  # noqa: S608 (constants)
    " WHERE id = :id AND guardian_account_id IS NOT NULL"
)
_OF_GUARDIAN = (
    f"SELECT {_COLUMNS} FROM accounts"  # noqa: S608 (constants)
    " WHERE guardian_account_id = :guardian AND taken_over_at IS NULL"
)
# The cursor's row is looked for among the caller's own: another's tells nothing.
_CURSOR = "SELECT created_at FROM accounts WHERE id = :after AND guardian_account_id = :guardian"
_AFTER = f" AND (created_at > ({_CURSOR}) OR (created_at = ({_CURSOR}) AND id > :after))"
_OLDEST_FIRST = " ORDER BY created_at, id LIMIT :limit"
_PAGE_FIRST = Sql(_OF_GUARDIAN + _OLDEST_FIRST)
_PAGE_AFTER = Sql(_OF_GUARDIAN + _AFTER + _OLDEST_FIRST)
_MARK_NOTIFIED = Sql(
    "UPDATE accounts SET of_age_notified_at = :now"
    " WHERE id = :id AND state = :dependant AND of_age_notified_at IS NULL"
)
_START_TAKE_OVER = Sql(
    "UPDATE accounts SET state = :pending, phone_enc = :phone, email_enc = :email"
    " WHERE id = :id AND state = :dependant"
)
_FINISH_TAKE_OVER = Sql(
    "UPDATE accounts SET taken_over_at = :now, take_over_index = NULL"
    " WHERE id = :id AND guardian_account_id IS NOT NULL AND taken_over_at IS NULL"
    " RETURNING guardian_account_id"
)
_CHANGE_GUARDIAN = Sql(
    "UPDATE accounts SET guardian_account_id = :guardian"
    " WHERE id = :id AND guardian_account_id = :former AND state = :dependant"
)
_DUE: dict[int, Sql] = {}


def _due_sql(days: int) -> Sql:
    sql = _DUE.get(days)
    if sql is None:
        wanted = ", ".join(f":d{i}" for i in range(days))
        sql = _DUE[days] = Sql(
            f"SELECT {_COLUMNS} FROM accounts"  # noqa: S608 (constants)
            f" WHERE take_over_index IN ({wanted}) AND state = :dependant"
            " AND of_age_notified_at IS NULL ORDER BY id LIMIT :limit"
        )
    return sql


class DependantRepository(Repository):
    __slots__ = ("_accounts",)

    def __init__(self, db: Driver, protection: DataProtection) -> None:
        super().__init__(db, protection)
        self._accounts = AccountRepository(db, protection)

    def _day_index(self, day: date) -> bytes:
        return self._p.hasher.digest(TAKE_OVER_INDEX_PURPOSE, day.isoformat())

    def add(self, dependant: Dependant) -> Subject:
        account = dependant.account
        subject = self._accounts.add(account)
        params = {
            "id": account.id,
            "guardian": dependant.guardian_account_id,
            "day": self._day_index(dependant.take_over_on),
        }
        self._db.count(_LINK, params)
        return subject

    def get(self, account_id: str) -> Dependant | None:
        row = self._db.one(_GET, {"id": account_id})
        return None if row is None else self._dependant(row)

    def of_guardian(
        self, guardian_account_id: str, after: str | None, limit: int
    ) -> list[Dependant]:
        params = {"guardian": guardian_account_id, "after": after, "limit": limit}
        rows = self._db.all(_PAGE_FIRST if after is None else _PAGE_AFTER, params)
        return [self._dependant(row) for row in rows]

    def due(self, days: Sequence[date], limit: int) -> list[Dependant]:
        if not days:
            return []
        params: dict[str, object] = {f"d{i}": self._day_index(d) for i, d in enumerate(days)}
        params.update(dependant=AccountState.DEPENDANT.value, limit=limit)
        return [self._dependant(row) for row in self._db.all(_due_sql(len(days)), params)]

    def mark_notified(self, account_id: str, now: datetime) -> bool:
        params = {"id": account_id, "now": self._t(now), "dependant": AccountState.DEPENDANT.value}
        return self._db.count(_MARK_NOTIFIED, params) == 1

    def start_take_over(
        self, account_id: str, phone: str, email: str | None, now: datetime
    ) -> bool:
        # Sealed as AccountRepository seals them (the same contexts).
        context = f"account:{account_id}"
        params = {
            "id": account_id,
            "phone": self._p.seal(phone, f"{context}:phone"),
            "email": None if email is None else self._p.seal(email, f"{context}:email"),
            "pending": AccountState.PENDING.value,
            "dependant": AccountState.DEPENDANT.value,
        }
        return self._db.count(_START_TAKE_OVER, params) == 1

    def finish_take_over(self, account_id: str, now: datetime) -> str | None:
        row = self._db.one(_FINISH_TAKE_OVER, {"id": account_id, "now": self._t(now)})
        return None if row is None else str(row[0])

    def change_guardian(self, account_id: str, former: str, guardian: str) -> bool:
        params = {
            "id": account_id,
            "former": former,
            "guardian": guardian,
            "dependant": AccountState.DEPENDANT.value,
        }
        return self._db.count(_CHANGE_GUARDIAN, params) == 1

    def _dependant(self, row: Row) -> Dependant:
        account = self._accounts.to_domain(row[:_ACCOUNT_FIELDS])
        guardian, notified, taken_over = row[_ACCOUNT_FIELDS:]
        return Dependant(
            account=account,
            guardian_account_id=guardian,
            take_over_on=take_over_date(account.demographics.birth_date),
            notified_at=None if notified is None else self._read_t(notified),
            taken_over_at=None if taken_over is None else self._read_t(taken_over),
        )
