"""Accounts (their one-time codes: activation_codes.py). State changes go
through one conditional UPDATE, never read-then-write, because several
workers and replicas share the database."""

from __future__ import annotations

from datetime import date, datetime

from eid_service.domain.account import Account, AccountLevel, AccountState
from eid_service.domain.citizen import Demographics, Gender
from eid_service.domain.linked_document import ATTRIBUTE_DOCUMENT, LinkedDocument
from eid_service.domain.mode_locks import ModeLock
from eid_service.domain.party import VerifyMode
from eid_service.domain.share import DOCUMENT_ATTRIBUTES, Attribute
from eid_service.store.protection import DataProtection
from eid_service.store.repositories.account_documents import AccountDocumentRepository
from eid_service.store.repositories.base import Repository
from eid_service.store.sql import Row, Sql
from eid_service.use_cases.ports import (
    AccountView,
    StoredCredential,
    Subject,
)

_COLUMNS = (
    "id, personal_id_enc, full_name_enc, birth_date_enc, gender_enc, phone_enc, email_enc,"
    " level, state, password_hash, created_at, activated_at, nationality_enc, gender"
)
# What `to_domain` reads, in order (dependants.py selects them too).
ACCOUNT_COLUMNS = _COLUMNS
_INSERT = Sql(
    "INSERT INTO accounts (id, personal_id_index, personal_id_enc, full_name_enc,"
    " birth_date_enc, gender_enc, phone_enc, email_enc, level, state, password_hash, created_at,"
    " activated_at, nationality_enc) VALUES (:id, :index, :personal_id, :full_name, :birth_date,"
    " :gender, :phone, :email, :level, :state, :password_hash, :created_at, :activated_at,"
    " :nationality)"
)
_BY_ID = Sql(f"SELECT {_COLUMNS} FROM accounts WHERE id = :id")  # noqa: S608 (constants)
_BY_INDEX = Sql(
    f"SELECT {_COLUMNS} FROM accounts WHERE personal_id_index = :index"  # noqa: S608 (constants)
)
_EXISTS = Sql("SELECT 1 FROM accounts WHERE personal_id_index = :index")
# SQLite's one writer reads the latest state already, and nothing else writes
# meanwhile; PostgreSQL holds the row (a change waits for this transaction,
# or this one for the change, and then reads the changed row).
_STATE = Sql("SELECT state FROM accounts WHERE id = :id")
_STATE_SHARED = Sql("SELECT state FROM accounts WHERE id = :id FOR SHARE")
_STATE_ALONE = Sql("SELECT state FROM accounts WHERE id = :id FOR UPDATE")
_CREDENTIAL = Sql("SELECT id, state, password_hash FROM accounts WHERE personal_id_index = :index")
# The same, with one sealed contact (a code request reads nothing else).
_CREDENTIAL_AND_CONTACT = {
    contact: Sql(
        f"SELECT id, state, password_hash, {column}_enc FROM accounts"  # noqa: S608 (constants)
        " WHERE personal_id_index = :index"
    )
    for contact, column in ((Attribute.PHONE_NUMBER, "phone"), (Attribute.EMAIL, "email"))
}
# The same, with the citizen's lock on one Verify mode (its primary key): no extra round trip.
_WITH_LOCK_COLUMNS = "a.id, a.state, a.password_hash, l.mode, l.unlocked_until"
_WITH_LOCK_FROM = (
    " FROM accounts a LEFT JOIN verify_mode_locks l ON l.account_id = a.id AND l.mode = :mode"
    " WHERE a.personal_id_index = :index"
)
_CREDENTIAL_AND_LOCK = Sql(f"SELECT {_WITH_LOCK_COLUMNS}{_WITH_LOCK_FROM}")
_DEACTIVATE = Sql(
    "UPDATE accounts SET state = :deactivated, deactivated_at = :now"
    " WHERE id = :id AND state <> :deactivated"
)
_LOCK = Sql(
    "UPDATE accounts SET state = :locked, locked_at = :now WHERE id = :id AND state = :active"
)
_UNLOCK = Sql(
    "UPDATE accounts SET state = :active, locked_at = NULL WHERE id = :id AND state = :locked"
)
_MARK_ACTIVE = Sql(
    "UPDATE accounts SET state = :state, password_hash = :password_hash,"
    " activated_at = :activated_at WHERE id = :id AND state = :pending"
)
_RAISE_LEVEL = Sql(
    "UPDATE accounts SET level = :level WHERE id = :id AND level < :level AND state = :active"
)
_STATES = {"active": AccountState.ACTIVE.value, "locked": AccountState.LOCKED.value}
_DEACTIVATED = AccountState.DEACTIVATED.value
# The encrypted column and its AAD label per attribute (gender: see `gender_of`).
# Dicts, not AccountLevel(v) and AccountState(v): every Verify reads an account.
_LEVELS = {int(level): level for level in AccountLevel}
_STATES_BY_VALUE = {state.value: state for state in AccountState}
_GENDERS = {gender.value: gender for gender in Gender}
_ENCRYPTED = {
    Attribute.PERSONAL_ID: "personal_id",
    Attribute.FULL_NAME: "full_name",
    Attribute.BIRTH_DATE: "birth_date",
    Attribute.PHONE_NUMBER: "phone",
    Attribute.EMAIL: "email",
    Attribute.NATIONALITY: "nationality",
}
# Opened in place of an account's values when there is no account: a name's size.
_DECOY_VALUE = "Nguyễn Thị Thu Hương"
# Built once per set of attributes: by account id (`view`), or by ID number
# after _CREDENTIAL_AND_LOCK's columns (`credential_and_view`).
_VIEWS: dict[tuple[tuple[Attribute, ...], bool], Sql] = {}


def _view_sql(wanted: tuple[Attribute, ...], *, with_credential: bool = False) -> Sql:
    sql = _VIEWS.get((wanted, with_credential))
    if sql is None:
        names = ["personal_id_index", "level", "state", "gender_enc", "gender"]
        names += [f"{_ENCRYPTED[a]}_enc" for a in wanted]
        if with_credential:
            columns = ", ".join([_WITH_LOCK_COLUMNS, *(f"a.{n}" for n in names)])
            text = f"SELECT {columns}{_WITH_LOCK_FROM}"
        else:
            text = f"SELECT {', '.join(names)} FROM accounts WHERE id = :id"  # noqa: S608
        sql = _VIEWS[wanted, with_credential] = Sql(text)
    return sql


def gender_of(
    p: DataProtection, sealed: bytes | None, clear: str | None, account_id: str
) -> Gender:
    """An account's gender: sealed in `gender_enc`, or in clear in `gender`
    in a row written before revision 0020 that `rotate-keys` has not sealed yet."""
    if sealed is not None:
        return _GENDERS[p.open(sealed, f"account:{account_id}:gender")]
    return Gender(clear)


class AccountRepository(Repository):
    def add(self, account: Account) -> Subject:
        p, ctx = self._p, f"account:{account.id}"
        d = account.demographics
        subject = p.hasher.blind_index(d.personal_id)
        self._db.count(
            _INSERT,
            {
                "id": account.id,
                "index": subject,
                "personal_id": p.seal(d.personal_id, f"{ctx}:personal_id"),
                "full_name": p.seal(d.full_name, f"{ctx}:full_name"),
                "birth_date": p.seal(d.birth_date.isoformat(), f"{ctx}:birth_date"),
                "gender": p.seal(d.gender.value, f"{ctx}:gender"),
                "phone": p.seal(account.phone, f"{ctx}:phone"),
                "email": None if account.email is None else p.seal(account.email, f"{ctx}:email"),
                "level": int(account.level),
                "state": account.state.value,
                "password_hash": account.password_hash,
                "created_at": self._t(account.created_at),
                "activated_at": self._t(account.activated_at),
                "nationality": (
                    None
                    if account.nationality is None
                    else p.seal(account.nationality, f"{ctx}:nationality")
                ),
            },
        )
        return subject

    def subject_of(self, personal_id: str) -> bytes:
        return self._p.hasher.blind_index(personal_id)

    def exists(self, personal_id: str) -> bool:
        index = self._p.hasher.blind_index(personal_id)
        return self._db.one(_EXISTS, {"index": index}) is not None

    def get(self, account_id: str) -> Account | None:
        row = self._db.one(_BY_ID, {"id": account_id})
        return None if row is None else self.to_domain(row)

    def hold(self, account_id: str, *, alone: bool = False) -> AccountState | None:
        sql = _STATE if not self._db.postgres else _STATE_ALONE if alone else _STATE_SHARED
        row = self._db.one(sql, {"id": account_id})
        return None if row is None else AccountState(row[0])

    def find_by_personal_id(self, personal_id: str) -> Account | None:
        row = self._db.one(_BY_INDEX, {"index": self._p.hasher.blind_index(personal_id)})
        return None if row is None else self.to_domain(row)

    def credential(self, personal_id: str, mode: VerifyMode | None = None) -> StoredCredential:
        index = self._p.hasher.blind_index(personal_id)
        if mode is None:
            row = self._db.one(_CREDENTIAL, {"index": index})
        else:
            row = self._db.one(_CREDENTIAL_AND_LOCK, {"index": index, "mode": mode.value})
        return self._credential(index, mode, row)

    def _credential(
        self, index: bytes, mode: VerifyMode | None, row: Row | None
    ) -> StoredCredential:
        if row is None:
            return StoredCredential(index, None, None, None)
        lock = None
        if mode is not None and row[3] is not None:
            lock = ModeLock(mode, self._db.read_time(row[4]))
        return StoredCredential(index, row[0], AccountState(row[1]), row[2], lock)

    def credential_and_contact(
        self, personal_id: str, contact: Attribute
    ) -> tuple[StoredCredential, str | None]:
        index = self._p.hasher.blind_index(personal_id)
        row = self._db.one(_CREDENTIAL_AND_CONTACT[contact], {"index": index})
        credential = self._credential(index, None, row)
        if row is None or row[3] is None:
            # One value opened all the same: the time taken does not tell a
            # number without an account (or without an email) from one with.
            self._p.open_decoy(_DECOY_VALUE)
            return credential, None
        return credential, self._p.open(row[3], f"account:{row[0]}:{_ENCRYPTED[contact]}")

    def view(self, account_id: str, attributes: frozenset[Attribute]) -> AccountView | None:
        wanted = tuple(a for a in _ENCRYPTED if a in attributes)
        row = self._db.one(_view_sql(wanted), {"id": account_id})
        return None if row is None else self._view(account_id, attributes, wanted, row)

    def credential_and_view(
        self, personal_id: str, mode: VerifyMode, attributes: frozenset[Attribute]
    ) -> tuple[StoredCredential, AccountView | None]:
        index = self._p.hasher.blind_index(personal_id)
        wanted = tuple(a for a in _ENCRYPTED if a in attributes)
        sql = _view_sql(wanted, with_credential=True)
        row = self._db.one(sql, {"index": index, "mode": mode.value})
        credential = self._credential(index, mode, row)
        if row is None:
            # As many values opened as an account's would be: the time taken
            # does not tell a number without one (a demographic claim).
            for _ in range(len(wanted) + (Attribute.GENDER in attributes)):
                self._p.open_decoy(_DECOY_VALUE)
            return credential, None
        return credential, self._view(row[0], attributes, wanted, row[5:])

    def _view(
        self,
        account_id: str,
        attributes: frozenset[Attribute],
        wanted: tuple[Attribute, ...],
        row: Row,
    ) -> AccountView:
        """The view of `_view_sql`'s columns in `row`."""
        values: dict[Attribute, str] = {}
        for attribute, blob in zip(wanted, row[5:], strict=True):
            if blob is None:  # no email registered, a citizen: nothing to release
                continue
            label = _ENCRYPTED[attribute]
            value = self._p.open(blob, f"account:{account_id}:{label}")
            if value:  # a dependant has no phone (stored empty): nothing to release
                values[attribute] = value
        if Attribute.GENDER in attributes:
            values[Attribute.GENDER] = gender_of(self._p, row[3], row[4], account_id).value
        documents: tuple[LinkedDocument, ...] = ()
        types = frozenset(ATTRIBUTE_DOCUMENT[a] for a in attributes & DOCUMENT_ATTRIBUTES)
        if types:
            linked = AccountDocumentRepository(self._db, self._p)
            documents = tuple(linked.of_account(account_id, types))
        return AccountView(
            id=account_id,
            subject=bytes(row[0]),
            level=_LEVELS[row[1]],
            state=_STATES_BY_VALUE[row[2]],
            values=values,
            documents=documents,
        )

    def mark_active(self, account: Account) -> bool:
        changed = self._db.count(
            _MARK_ACTIVE,
            {
                "id": account.id,
                "state": account.state.value,
                "password_hash": account.password_hash,
                "activated_at": self._t(account.activated_at),
                "pending": AccountState.PENDING.value,
            },
        )
        return changed == 1

    def lock(self, account_id: str, now: datetime) -> bool:
        params = {"id": account_id, "now": self._t(now), **_STATES}
        return self._db.count(_LOCK, params) == 1

    def unlock(self, account_id: str) -> bool:
        return self._db.count(_UNLOCK, {"id": account_id, **_STATES}) == 1

    def deactivate(self, account_id: str, now: datetime) -> bool:
        params = {"id": account_id, "now": self._t(now), "deactivated": _DEACTIVATED}
        return self._db.count(_DEACTIVATE, params) == 1

    def raise_level(self, account_id: str, level: AccountLevel) -> bool:
        params = {"id": account_id, "level": int(level), "active": AccountState.ACTIVE.value}
        return self._db.count(_RAISE_LEVEL, params) == 1

    def to_domain(self, r: Row) -> Account:
        p, ctx = self._p, f"account:{r[0]}"
        return Account(
            id=r[0],
            demographics=Demographics(
                personal_id=p.open(r[1], f"{ctx}:personal_id"),
                full_name=p.open(r[2], f"{ctx}:full_name"),
                birth_date=date.fromisoformat(p.open(r[3], f"{ctx}:birth_date")),
                gender=gender_of(p, r[4], r[13], r[0]),
            ),
            phone=p.open(r[5], f"{ctx}:phone"),
            email=None if r[6] is None else p.open(r[6], f"{ctx}:email"),
            level=AccountLevel(r[7]),
            state=AccountState(r[8]),
            password_hash=r[9],
            created_at=self._read_t(r[10]),
            activated_at=None if r[11] is None else self._read_t(r[11]),
            nationality=None if r[12] is None else p.open(r[12], f"{ctx}:nationality"),
        )
