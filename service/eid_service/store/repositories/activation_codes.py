"""One-time codes sent to an account's phone or email (activation, lock,
unlock, verification), stored only as keyed digests. Single-use and counted
things change through one conditional UPDATE, never read-then-write, because
several workers and replicas share the database."""

from __future__ import annotations

import secrets
from datetime import datetime

from eid_service.domain.activation import CodePurpose
from eid_service.store.repositories.base import Repository
from eid_service.store.sql import Row, Sql
from eid_service.use_cases.ports import ActivationCodeRecord

_CODE_INSERT = Sql(
    "INSERT INTO activation_codes (id, account_id, purpose, code_digest, created_at, expires_at,"
    " attempts, party_id) VALUES (:id, :account_id, :purpose, :digest, :created_at, :expires_at,"
    " 0, :party_id)"
)
_LATEST = (
    "SELECT id, code_digest, expires_at, attempts, consumed_at FROM activation_codes"
    " WHERE account_id = :account_id AND purpose = :purpose"
)
_NEWEST = " ORDER BY created_at DESC, id DESC LIMIT 1"
_CODE_LATEST = Sql(_LATEST + " AND party_id IS NULL" + _NEWEST)
_CODE_LATEST_FOR_PARTY = Sql(_LATEST + " AND party_id = :party_id" + _NEWEST)
_CODE_RECENT = Sql(
    _LATEST + " AND party_id IS NULL ORDER BY created_at DESC, id DESC LIMIT :newest"
)
_CODE_CONSUMED_MATCH = Sql(
    "SELECT 1 FROM activation_codes WHERE account_id = :account_id AND code_digest = :digest"
    " AND consumed_at IS NOT NULL"
)
_CODE_WRONG = Sql(
    "UPDATE activation_codes SET attempts = attempts + 1 WHERE id = :id AND attempts < :max"
)
# One wrong guess against each of _CODE_RECENT's codes.
_CODE_WRONG_ON_RECENT = Sql(
    "UPDATE activation_codes SET attempts = attempts + 1 WHERE attempts < :max AND id IN"
    " (SELECT id FROM activation_codes WHERE account_id = :account_id AND purpose = :purpose"
    " AND party_id IS NULL ORDER BY created_at DESC, id DESC LIMIT :newest)"
)
_CODE_CONSUME = Sql(
    "UPDATE activation_codes SET consumed_at = :now, attempts = attempts + 1"
    " WHERE id = :id AND consumed_at IS NULL AND expires_at > :now AND attempts < :max"
)


_CODE_PURGE = Sql(
    "DELETE FROM activation_codes WHERE id IN (SELECT id FROM activation_codes"
    " WHERE expires_at < :before ORDER BY id LIMIT :limit)"
)


class ActivationCodeRepository(Repository):
    PURPOSE = "activation-code"

    def add(
        self,
        account_id: str,
        code: str,
        now: datetime,
        expires_at: datetime,
        purpose: CodePurpose = CodePurpose.ACTIVATION,
        *,
        party_id: str | None = None,
    ) -> str:
        code_id = "act_" + secrets.token_hex(8)
        self._db.count(
            _CODE_INSERT,
            {
                "id": code_id,
                "account_id": account_id,
                "purpose": purpose.value,
                "digest": self._digest(account_id, code, purpose),
                "created_at": self._t(now),
                "expires_at": self._t(expires_at),
                "party_id": party_id,
            },
        )
        return code_id

    def latest_for(
        self,
        account_id: str,
        purpose: CodePurpose = CodePurpose.ACTIVATION,
        *,
        party_id: str | None = None,
    ) -> ActivationCodeRecord | None:
        params = {"account_id": account_id, "purpose": purpose.value}
        if party_id is None:
            row = self._db.one(_CODE_LATEST, params)
        else:
            row = self._db.one(_CODE_LATEST_FOR_PARTY, {**params, "party_id": party_id})
        return None if row is None else self._record(account_id, purpose, row)

    def recent_for(
        self, account_id: str, purpose: CodePurpose, newest: int
    ) -> list[ActivationCodeRecord]:
        params = {"account_id": account_id, "purpose": purpose.value, "newest": newest}
        rows = self._db.all(_CODE_RECENT, params)
        return [self._record(account_id, purpose, row) for row in rows]

    def _record(self, account_id: str, purpose: CodePurpose, row: Row) -> ActivationCodeRecord:
        consumed = None if row[4] is None else self._read_t(row[4])
        return ActivationCodeRecord(
            row[0], account_id, purpose, bytes(row[1]), self._read_t(row[2]), row[3], consumed
        )

    def matches(self, record: ActivationCodeRecord, code: str) -> bool:
        return self._p.hasher.matches(
            record.code_digest, self.PURPOSE, _bound(record.account_id, code, record.purpose)
        )

    def any_consumed_matches(self, account_id: str, code: str) -> bool:
        params = {"account_id": account_id, "digest": self._digest(account_id, code)}
        return self._db.one(_CODE_CONSUMED_MATCH, params) is not None

    def count_wrong_guess(self, code_id: str, max_attempts: int) -> bool:
        return self._db.count(_CODE_WRONG, {"id": code_id, "max": max_attempts}) == 1

    def count_wrong_guess_on_recent(
        self, account_id: str, purpose: CodePurpose, newest: int, max_attempts: int
    ) -> int:
        params = {"account_id": account_id, "purpose": purpose.value, "newest": newest}
        return self._db.count(_CODE_WRONG_ON_RECENT, {**params, "max": max_attempts})

    def consume(self, code_id: str, now: datetime, max_attempts: int) -> bool:
        params = {"id": code_id, "now": self._t(now), "max": max_attempts}
        return self._db.count(_CODE_CONSUME, params) == 1

    def purge_expired(self, before: datetime, limit: int) -> int:
        return self._db.count(_CODE_PURGE, {"before": self._t(before), "limit": limit})

    def _digest(
        self, account_id: str, code: str, purpose: CodePurpose = CodePurpose.ACTIVATION
    ) -> bytes:
        return self._p.hasher.digest(self.PURPOSE, _bound(account_id, code, purpose))


def _bound(account_id: str, code: str, purpose: CodePurpose) -> str:
    """Binding the account and purpose stops a digest from matching another
    account's code, or a lock code from activating (activation codes keep the
    form they had before purposes existed)."""
    if purpose is CodePurpose.ACTIVATION:
        return f"{account_id}:{code}"
    return f"{account_id}:{purpose.value}:{code}"
