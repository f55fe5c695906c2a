"""Accounts and their activation codes. Single-use and counted things change
through one conditional UPDATE, never read-then-write, because several
workers and replicas share the database."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from eid_service.domain.account import Account, AccountLevel, AccountState
from eid_service.domain.citizen import Demographics, Gender
from eid_service.store.models import AccountRow, ActivationCodeRow
from eid_service.store.protection import DataProtection


def _rowcount(result: object) -> int:
    assert isinstance(result, CursorResult)
    return result.rowcount


class AccountRepository:
    def __init__(self, session: AsyncSession, protection: DataProtection) -> None:
        self._s = session
        self._p = protection

    async def add(self, account: Account) -> None:
        p, ctx = self._p, f"account:{account.id}"
        d = account.demographics
        self._s.add(
            AccountRow(
                id=account.id,
                personal_id_index=p.hasher.blind_index(d.personal_id),
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
                failed_password_attempts=0,
            )
        )
        await self._s.flush()

    async def find_by_personal_id(self, personal_id: str) -> Account | None:
        index = self._p.hasher.blind_index(personal_id)
        row = await self._s.scalar(select(AccountRow).where(AccountRow.personal_id_index == index))
        return None if row is None else self._to_domain(row)

    async def get(self, account_id: str) -> Account | None:
        row = await self._s.get(AccountRow, account_id)
        return None if row is None else self._to_domain(row)

    async def mark_active(self, account: Account) -> bool:
        """Persists `account.activate(...)`; False if another call got there first."""
        result = await self._s.execute(
            update(AccountRow)
            .where(AccountRow.id == account.id, AccountRow.state == AccountState.PENDING.value)
            .values(
                state=account.state.value,
                password_hash=account.password_hash,
                activated_at=account.activated_at,
            )
        )
        return _rowcount(result) == 1

    async def failed_password_count(self, account_id: str) -> tuple[int, datetime | None]:
        row = (
            await self._s.execute(
                select(
                    AccountRow.failed_password_attempts, AccountRow.last_failed_password_at
                ).where(AccountRow.id == account_id)
            )
        ).one()
        return row[0], row[1]

    async def lease_password_check(self, account_id: str, now: datetime, until: datetime) -> bool:
        """Takes the account's one password-check slot until `until`, in one
        conditional UPDATE; False while another check holds it. Checks of one
        account thus run one after another, each seeing the failures before it,
        so a burst of concurrent guesses cannot outrun the limit."""
        result = await self._s.execute(
            update(AccountRow)
            .where(
                AccountRow.id == account_id,
                AccountRow.password_check_until.is_(None) | (AccountRow.password_check_until < now),
            )
            .values(password_check_until=until)
        )
        return _rowcount(result) == 1

    async def release_password_check(self, account_id: str) -> None:
        await self._s.execute(
            update(AccountRow).where(AccountRow.id == account_id).values(password_check_until=None)
        )

    async def end_password_check(self, account_id: str, *, failed_at: datetime | None) -> None:
        """Releases the slot; counts a failure, or clears the count on success."""
        values: dict[str, object] = {"password_check_until": None}
        if failed_at is None:
            values.update(failed_password_attempts=0, last_failed_password_at=None)
        else:
            values.update(
                failed_password_attempts=AccountRow.failed_password_attempts + 1,
                last_failed_password_at=failed_at,
            )
        await self._s.execute(update(AccountRow).where(AccountRow.id == account_id).values(values))

    def _to_domain(self, row: AccountRow) -> Account:
        p, ctx = self._p, f"account:{row.id}"
        return Account(
            id=row.id,
            demographics=Demographics(
                personal_id=p.open(row.personal_id_enc, f"{ctx}:personal_id"),
                full_name=p.open(row.full_name_enc, f"{ctx}:full_name"),
                birth_date=date.fromisoformat(p.open(row.birth_date_enc, f"{ctx}:birth_date")),
                gender=Gender(row.gender),
            ),
            phone=p.open(row.phone_enc, f"{ctx}:phone"),
            email=None if row.email_enc is None else p.open(row.email_enc, f"{ctx}:email"),
            level=AccountLevel(row.level),
            state=AccountState(row.state),
            created_at=row.created_at,
            activated_at=row.activated_at,
            password_hash=row.password_hash,
        )


@dataclass(frozen=True)
class ActivationCodeRecord:
    id: str
    account_id: str
    code_digest: bytes
    expires_at: datetime
    attempts: int
    consumed_at: datetime | None


class ActivationCodeRepository:
    PURPOSE = "activation-code"

    def __init__(self, session: AsyncSession, protection: DataProtection) -> None:
        self._s = session
        self._p = protection

    async def add(self, account_id: str, code: str, now: datetime, expires_at: datetime) -> str:
        code_id = "act_" + secrets.token_hex(8)
        self._s.add(
            ActivationCodeRow(
                id=code_id,
                account_id=account_id,
                code_digest=self._digest(account_id, code),
                created_at=now,
                expires_at=expires_at,
                attempts=0,
            )
        )
        await self._s.flush()
        return code_id

    async def latest_for(self, account_id: str) -> ActivationCodeRecord | None:
        row = await self._s.scalar(
            select(ActivationCodeRow)
            .where(ActivationCodeRow.account_id == account_id)
            .order_by(ActivationCodeRow.created_at.desc(), ActivationCodeRow.id.desc())
            .limit(1)
        )
        if row is None:
            return None
        return ActivationCodeRecord(
            row.id, row.account_id, row.code_digest, row.expires_at, row.attempts, row.consumed_at
        )

    async def any_consumed_matches(self, account_id: str, code: str) -> bool:
        digest = self._digest(account_id, code)
        row = await self._s.scalar(
            select(ActivationCodeRow.id).where(
                ActivationCodeRow.account_id == account_id,
                ActivationCodeRow.code_digest == digest,
                ActivationCodeRow.consumed_at.is_not(None),
            )
        )
        return row is not None

    def matches(self, record: ActivationCodeRecord, code: str) -> bool:
        return self._p.hasher.matches(
            record.code_digest, self.PURPOSE, f"{record.account_id}:{code}"
        )

    async def reserve_attempt(self, code_id: str, max_attempts: int) -> bool:
        """Counts one attempt before the code is compared, in one conditional
        UPDATE, so concurrent guesses cannot outrun the limit; False when the
        code is used up or out of attempts."""
        result = await self._s.execute(
            update(ActivationCodeRow)
            .where(
                ActivationCodeRow.id == code_id,
                ActivationCodeRow.consumed_at.is_(None),
                ActivationCodeRow.attempts < max_attempts,
            )
            .values(attempts=ActivationCodeRow.attempts + 1)
        )
        return _rowcount(result) == 1

    async def consume(self, code_id: str, now: datetime) -> bool:
        """Uses the code once; False when it was used or expired meanwhile."""
        result = await self._s.execute(
            update(ActivationCodeRow)
            .where(
                ActivationCodeRow.id == code_id,
                ActivationCodeRow.consumed_at.is_(None),
                ActivationCodeRow.expires_at > now,
            )
            .values(consumed_at=now)
        )
        return _rowcount(result) == 1

    def _digest(self, account_id: str, code: str) -> bytes:
        # Binding the account id stops a digest from matching another account's code.
        return self._p.hasher.digest(self.PURPOSE, f"{account_id}:{code}")
