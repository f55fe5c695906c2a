"""Share-signing keys; the private half is sealed with the field cipher, bound
to its key id, so a row copied onto another key id does not open."""

from __future__ import annotations

from datetime import datetime

from eid_service.domain.signing_key import KeyState, SigningKeyRecord
from eid_service.store.repositories.base import Repository
from eid_service.store.sql import Sql
from eid_service.use_cases.ports import StoredSigningKey

_ALL = Sql(
    "SELECT key_id, public_key, private_key_enc, created_at, retired_at, revoked_at"
    " FROM signing_keys ORDER BY created_at, key_id"
)
_INSERT = Sql(
    "INSERT INTO signing_keys (key_id, public_key, private_key_enc, is_current, created_at,"
    " retired_at, revoked_at) VALUES (:key_id, :public_key, :private_key_enc, :is_current,"
    " :created_at, :retired_at, :revoked_at)"
)
# Readers (every server's key cache) go on; a second change waits for this
# one's commit, then sees its key (PostgreSQL reads afresh per statement).
_LOCK_FOR_CHANGE = Sql("LOCK TABLE signing_keys IN EXCLUSIVE MODE")
_RETIRE_CURRENT = Sql(
    "UPDATE signing_keys SET is_current = NULL, retired_at = :now"
    " WHERE is_current IS NOT NULL RETURNING key_id"
)
_REVOKE = Sql(
    "UPDATE signing_keys SET is_current = NULL, revoked_at = :now,"
    " retired_at = COALESCE(retired_at, :now) WHERE key_id = :key_id AND revoked_at IS NULL"
)


def _context(key_id: str) -> str:
    return f"signing-key:{key_id}"


class SigningKeyRepository(Repository):
    def all(self) -> list[StoredSigningKey]:
        return [
            StoredSigningKey(
                SigningKeyRecord(
                    key_id=str(row[0]),
                    public_key=bytes(row[1]),
                    created_at=self._read_t(row[3]),
                    retired_at=None if row[4] is None else self._read_t(row[4]),
                    revoked_at=None if row[5] is None else self._read_t(row[5]),
                ),
                self._p.open_bytes(bytes(row[2]), _context(str(row[0]))),
            )
            for row in self._db.all(_ALL, {})
        ]

    def add(self, key: StoredSigningKey) -> None:
        record = key.record
        self._db.count(
            _INSERT,
            {
                "key_id": record.key_id,
                "public_key": record.public_key,
                "private_key_enc": self._p.seal_bytes(key.private_key, _context(record.key_id)),
                "is_current": True if record.state is KeyState.CURRENT else None,
                "created_at": self._t(record.created_at),
                "retired_at": self._t(record.retired_at),
                "revoked_at": self._t(record.revoked_at),
            },
        )

    def lock_for_change(self) -> None:
        """Serialises changes of the keys: two rotations at once each read
        the other's key instead of both making a current one (a unique
        violation). SQLite's writer already runs one write at a time."""
        if self._db.postgres:
            self._db.count(_LOCK_FOR_CHANGE, {})

    def retire_current(self, now: datetime) -> str | None:
        row = self._db.one(_RETIRE_CURRENT, {"now": self._t(now)})
        return None if row is None else str(row[0])

    def revoke(self, key_id: str, now: datetime) -> bool:
        return self._db.count(_REVOKE, {"key_id": key_id, "now": self._t(now)}) == 1
