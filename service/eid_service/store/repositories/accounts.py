"""Accounts and their activation codes. Single-use and counted things change
through one conditional UPDATE, never read-then-write, because several
workers and replicas share the database."""

from __future__ import annotations

import secrets
from datetime import date, datetime
from typing import Any

from sqlalchemy import RowMapping, insert, select, update

from eid_service.domain.account import Account, AccountLevel, AccountState
from eid_service.domain.citizen import Demographics, Gender
from eid_service.domain.share import Attribute
from eid_service.store.models import AccountRow, ActivationCodeRow
from eid_service.store.repositories.base import Repository, rowcount
from eid_service.use_cases.ports import (
    AccountView,
    ActivationCodeRecord,
    StoredCredential,
    Subject,
)

# Encrypted column and its AAD label per attribute, for decrypting only what is released.
_ATTRIBUTE_COLUMNS = {
    Attribute.PERSONAL_ID: (AccountRow.personal_id_enc, "personal_id"),
    Attribute.FULL_NAME: (AccountRow.full_name_enc, "full_name"),
    Attribute.BIRTH_DATE: (AccountRow.birth_date_enc, "birth_date"),
}

_CREDENTIAL = select(AccountRow.id, AccountRow.state, AccountRow.password_hash)


class AccountRepository(Repository):
    def add(self, account: Account) -> Subject:
        p, ctx = self._p, f"account:{account.id}"
        d = account.demographics
        subject = p.hasher.blind_index(d.personal_id)
        self._c.execute(
            insert(AccountRow).values(
                id=account.id,
                personal_id_index=subject,
                personal_id_enc=p.seal(d.personal_id, f"{ctx}:personal_id"),
                full_name_enc=p.seal(d.full_name, f"{ctx}:full_name"),
                birth_date_enc=p.seal(d.birth_date.isoformat(), f"{ctx}:birth_date"),
                gender=d.gender.value,
                phone_enc=p.seal(account.phone, f"{ctx}:phone"),
                email_enc=None if account.email is None else p.seal(account.email, f"{ctx}:email"),
                level=int(account.level),
                state=account.state.value,
                password_hash=account.password_hash,
                created_at=account.created_at,
                activated_at=account.activated_at,
            )
        )
        return subject

    def exists(self, personal_id: str) -> bool:
        index = self._p.hasher.blind_index(personal_id)
        found = self._c.scalar(select(AccountRow.id).where(AccountRow.personal_id_index == index))
        return found is not None

    def get(self, account_id: str) -> Account | None:
        row = self._c.execute(select(AccountRow).where(AccountRow.id == account_id)).first()
        return None if row is None else self._to_domain(row._mapping)

    def find_by_personal_id(self, personal_id: str) -> Account | None:
        index = self._p.hasher.blind_index(personal_id)
        row = self._c.execute(
            select(AccountRow).where(AccountRow.personal_id_index == index)
        ).first()
        return None if row is None else self._to_domain(row._mapping)

    def credential(self, personal_id: str) -> StoredCredential:
        index = self._p.hasher.blind_index(personal_id)
        row = self._c.execute(_CREDENTIAL.where(AccountRow.personal_id_index == index)).first()
        if row is None:
            return StoredCredential(index, None, None, None)
        return StoredCredential(index, row[0], AccountState(row[1]), row[2])

    def view(self, account_id: str, attributes: frozenset[Attribute]) -> AccountView | None:
        wanted = [a for a in _ATTRIBUTE_COLUMNS if a in attributes]
        columns = [
            AccountRow.personal_id_index,
            AccountRow.level,
            AccountRow.state,
            AccountRow.gender,
            *(_ATTRIBUTE_COLUMNS[a][0] for a in wanted),
        ]
        row: Any = self._c.execute(select(*columns).where(AccountRow.id == account_id)).first()
        if row is None:
            return None
        values: dict[Attribute, str] = {}
        for attribute, blob in zip(wanted, row[4:], strict=True):
            label = _ATTRIBUTE_COLUMNS[attribute][1]
            values[attribute] = self._p.open(blob, f"account:{account_id}:{label}")
        if Attribute.GENDER in attributes:
            values[Attribute.GENDER] = row[3]
        return AccountView(
            id=account_id,
            subject=row[0],
            level=AccountLevel(row[1]),
            state=AccountState(row[2]),
            values=values,
        )

    def mark_active(self, account: Account) -> bool:
        result = self._c.execute(
            update(AccountRow)
            .where(AccountRow.id == account.id, AccountRow.state == AccountState.PENDING.value)
            .values(
                state=account.state.value,
                password_hash=account.password_hash,
                activated_at=account.activated_at,
            )
        )
        return rowcount(result) == 1

    def _to_domain(self, r: RowMapping) -> Account:
        p, ctx = self._p, f"account:{r['id']}"
        email_enc = r["email_enc"]
        return Account(
            id=r["id"],
            demographics=Demographics(
                personal_id=p.open(r["personal_id_enc"], f"{ctx}:personal_id"),
                full_name=p.open(r["full_name_enc"], f"{ctx}:full_name"),
                birth_date=date.fromisoformat(p.open(r["birth_date_enc"], f"{ctx}:birth_date")),
                gender=Gender(r["gender"]),
            ),
            phone=p.open(r["phone_enc"], f"{ctx}:phone"),
            email=None if email_enc is None else p.open(email_enc, f"{ctx}:email"),
            level=AccountLevel(r["level"]),
            state=AccountState(r["state"]),
            created_at=r["created_at"],
            activated_at=r["activated_at"],
            password_hash=r["password_hash"],
        )


class ActivationCodeRepository(Repository):
    PURPOSE = "activation-code"

    def add(self, account_id: str, code: str, now: datetime, expires_at: datetime) -> str:
        code_id = "act_" + secrets.token_hex(8)
        self._c.execute(
            insert(ActivationCodeRow).values(
                id=code_id,
                account_id=account_id,
                code_digest=self._digest(account_id, code),
                created_at=now,
                expires_at=expires_at,
                attempts=0,
            )
        )
        return code_id

    def latest_for(self, account_id: str) -> ActivationCodeRecord | None:
        row = self._c.execute(
            select(
                ActivationCodeRow.id,
                ActivationCodeRow.code_digest,
                ActivationCodeRow.expires_at,
                ActivationCodeRow.attempts,
                ActivationCodeRow.consumed_at,
            )
            .where(ActivationCodeRow.account_id == account_id)
            .order_by(ActivationCodeRow.created_at.desc(), ActivationCodeRow.id.desc())
            .limit(1)
        ).first()
        if row is None:
            return None
        return ActivationCodeRecord(row[0], account_id, row[1], row[2], row[3], row[4])

    def matches(self, record: ActivationCodeRecord, code: str) -> bool:
        return self._p.hasher.matches(
            record.code_digest, self.PURPOSE, f"{record.account_id}:{code}"
        )

    def any_consumed_matches(self, account_id: str, code: str) -> bool:
        found = self._c.scalar(
            select(ActivationCodeRow.id).where(
                ActivationCodeRow.account_id == account_id,
                ActivationCodeRow.code_digest == self._digest(account_id, code),
                ActivationCodeRow.consumed_at.is_not(None),
            )
        )
        return found is not None

    def count_wrong_guess(self, code_id: str, max_attempts: int) -> bool:
        result = self._c.execute(
            update(ActivationCodeRow)
            .where(ActivationCodeRow.id == code_id, ActivationCodeRow.attempts < max_attempts)
            .values(attempts=ActivationCodeRow.attempts + 1)
        )
        return rowcount(result) == 1

    def consume(self, code_id: str, now: datetime, max_attempts: int) -> bool:
        result = self._c.execute(
            update(ActivationCodeRow)
            .where(
                ActivationCodeRow.id == code_id,
                ActivationCodeRow.consumed_at.is_(None),
                ActivationCodeRow.expires_at > now,
                ActivationCodeRow.attempts < max_attempts,
            )
            .values(consumed_at=now, attempts=ActivationCodeRow.attempts + 1)
        )
        return rowcount(result) == 1

    def _digest(self, account_id: str, code: str) -> bytes:
        # Binding the account id stops a digest from matching another account's code.
        return self._p.hasher.digest(self.PURPOSE, f"{account_id}:{code}")
