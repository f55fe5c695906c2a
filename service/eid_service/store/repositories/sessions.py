"""Citizen sessions: a signed-in device with a short-lived access token and a
rotating refresh token, both opaque and stored only as keyed digests."""

from __future__ import annotations

import secrets
from datetime import datetime

from eid_service.domain.account import AccountLevel, AccountState
from eid_service.security.keyed_hash import new_secret_token
from eid_service.store.repositories.base import Repository
from eid_service.store.sql import Sql
from eid_service.use_cases.ports import (
    AccountView,
    IssuedTokens,
    LiveSession,
    Reused,
    Rotation,
    SessionInfo,
    SessionLifetimes,
)

ACCESS_PURPOSE = "session"
REFRESH_PURPOSE = "refresh"
ACCESS_PREFIX = "eids"
REFRESH_PREFIX = "eidr"

_INSERT = Sql(
    "INSERT INTO sessions (id, account_id, access_digest, access_expires_at, refresh_digest,"
    " refresh_expires_at, device_enc, created_at, last_used_at) VALUES (:id, :account_id,"
    " :access, :access_until, :refresh, :refresh_until, :device, :now, :now)"
)
_BY_ACCESS = Sql(
    "SELECT s.id, s.account_id, a.personal_id_index, a.level, a.state FROM sessions s"
    " JOIN accounts a ON a.id = s.account_id WHERE s.access_digest = :digest"
    " AND s.access_expires_at > :now AND s.revoked_at IS NULL"
)
# Rotation sets last_used_at to the moment it spends the old token (nothing
# else moves it): equal, no refresh has come since.
_ANSWERED_LAST = Sql(
    "SELECT s.last_used_at = t.spent_at FROM spent_refresh_tokens t"
    " JOIN sessions s ON s.id = t.session_id"
    " WHERE t.digest = :old AND s.revoked_at IS NULL AND s.refresh_expires_at > :now"
)
_ID_BY_ACCESS = Sql("SELECT id FROM sessions WHERE access_digest = :digest")
_ENDED = Sql(
    "SELECT revoked_reason, revoked_at IS NULL AND refresh_expires_at > :now FROM sessions"
    " WHERE id = :id"
)
_ROTATE = Sql(
    "UPDATE sessions SET access_digest = :access, access_expires_at = :access_until,"
    " refresh_digest = :refresh, refresh_expires_at = :refresh_until, last_used_at = :now"
    " WHERE refresh_digest = :old AND revoked_at IS NULL AND refresh_expires_at > :now"
    " RETURNING id, account_id"
)
_SPEND = Sql(
    "INSERT INTO spent_refresh_tokens (digest, session_id, spent_at) VALUES (:old, :id, :now)"
)
_SPENT_BY = Sql(
    "SELECT s.id, s.account_id FROM spent_refresh_tokens t JOIN sessions s"
    " ON s.id = t.session_id WHERE t.digest = :old"
)
_REVOKE = Sql(
    "UPDATE sessions SET revoked_at = :now, revoked_reason = :reason"
    " WHERE id = :id AND account_id = :account_id AND revoked_at IS NULL"
    " AND refresh_expires_at > :now"
)
_REVOKE_ALL = Sql(
    "UPDATE sessions SET revoked_at = :now, revoked_reason = :reason"
    " WHERE account_id = :account_id AND revoked_at IS NULL AND refresh_expires_at > :now"
)
_LIVE = (
    "SELECT id, device_enc, created_at, last_used_at, refresh_expires_at FROM sessions"
    " WHERE account_id = :account_id AND revoked_at IS NULL AND refresh_expires_at > :now"
)
_LIST_FIRST = Sql(_LIVE + " ORDER BY created_at DESC, id DESC LIMIT :limit")
_LIST_AFTER = Sql(
    _LIVE  # noqa: S608 (constants)
    # The cursor's row is looked for among the caller's own: another's tells nothing.
    + " AND (created_at < (SELECT created_at FROM sessions WHERE id = :after"
    " AND account_id = :account_id) OR (created_at = (SELECT created_at FROM sessions"
    " WHERE id = :after AND account_id = :account_id) AND id < :after))"
    " ORDER BY created_at DESC, id DESC LIMIT :limit"
)
# A session goes once its refresh token could no longer be used, with the
# spent tokens that pointed to it.
_EXPIRED = "SELECT id FROM sessions WHERE refresh_expires_at <= :now LIMIT :limit"
_PURGE_SPENT = Sql(f"DELETE FROM spent_refresh_tokens WHERE session_id IN ({_EXPIRED})")  # noqa: S608
_PURGE = Sql(f"DELETE FROM sessions WHERE id IN ({_EXPIRED})")  # noqa: S608


class SessionRepository(Repository):
    def _tokens(
        self, session_id: str, account_id: str, now: datetime, lifetimes: SessionLifetimes
    ) -> tuple[IssuedTokens, dict[str, object]]:
        tokens = IssuedTokens(
            session_id=session_id,
            account_id=account_id,
            access_token=new_secret_token(ACCESS_PREFIX),
            access_expires_at=now + lifetimes.access,
            refresh_token=new_secret_token(REFRESH_PREFIX),
            refresh_expires_at=now + lifetimes.refresh,
        )
        params: dict[str, object] = {
            "access": self._p.hasher.digest(ACCESS_PURPOSE, tokens.access_token),
            "access_until": self._t(tokens.access_expires_at),
            "refresh": self._p.hasher.digest(REFRESH_PURPOSE, tokens.refresh_token),
            "refresh_until": self._t(tokens.refresh_expires_at),
            "now": self._t(now),
        }
        return tokens, params

    def open(
        self, account_id: str, device: str, now: datetime, lifetimes: SessionLifetimes
    ) -> IssuedTokens:
        session_id = "ses_" + secrets.token_hex(12)
        tokens, params = self._tokens(session_id, account_id, now, lifetimes)
        sealed = self._p.seal(device, f"session:{session_id}:device") if device else None
        self._db.count(
            _INSERT, {**params, "id": session_id, "account_id": account_id, "device": sealed}
        )
        return tokens

    def answered_last(self, refresh_token: str, now: datetime) -> bool | None:
        old = self._p.hasher.digest(REFRESH_PURPOSE, refresh_token)
        row = self._db.one(_ANSWERED_LAST, {"old": old, "now": self._t(now)})
        return None if row is None else bool(row[0])

    def id_of_access_token(self, token: str) -> str | None:
        digest = self._p.hasher.digest(ACCESS_PURPOSE, token)
        row = self._db.one(_ID_BY_ACCESS, {"digest": digest})
        return None if row is None else str(row[0])

    def ended(self, session_id: str, now: datetime) -> str | None:
        row = self._db.one(_ENDED, {"id": session_id, "now": self._t(now)})
        if row is None:
            return "expired"
        if row[1]:
            return None
        return "expired" if row[0] is None else str(row[0])

    def by_access_token(self, token: str, now: datetime) -> tuple[LiveSession, AccountView] | None:
        digest = self._p.hasher.digest(ACCESS_PURPOSE, token)
        row = self._db.one(_BY_ACCESS, {"digest": digest, "now": self._t(now)})
        if row is None:
            return None
        session = LiveSession(str(row[0]), str(row[1]))
        account = AccountView(
            session.account_id, bytes(row[2]), AccountLevel(row[3]), AccountState(row[4]), {}
        )
        return session, account

    def rotate(self, refresh_token: str, now: datetime, lifetimes: SessionLifetimes) -> Rotation:
        old = self._p.hasher.digest(REFRESH_PURPOSE, refresh_token)
        # The new tokens' ids are not known before the UPDATE names the session.
        tokens, params = self._tokens("", "", now, lifetimes)
        row = self._db.one(_ROTATE, {**params, "old": old})
        if row is not None:
            session_id, account_id = str(row[0]), str(row[1])
            self._db.count(_SPEND, {"old": old, "id": session_id, "now": self._t(now)})
            return IssuedTokens(
                session_id,
                account_id,
                tokens.access_token,
                tokens.access_expires_at,
                tokens.refresh_token,
                tokens.refresh_expires_at,
            )
        spent = self._db.one(_SPENT_BY, {"old": old})
        if spent is None:
            return None
        return Reused(str(spent[0]), str(spent[1]))

    def revoke(self, session_id: str, account_id: str, now: datetime, reason: str) -> bool:
        params = {"id": session_id, "account_id": account_id, "now": self._t(now), "reason": reason}
        return self._db.count(_REVOKE, params) > 0

    def revoke_all(self, account_id: str, now: datetime, reason: str) -> int:
        params = {"account_id": account_id, "now": self._t(now), "reason": reason}
        return self._db.count(_REVOKE_ALL, params)

    def list_live(
        self, account_id: str, now: datetime, after: str | None, limit: int
    ) -> list[SessionInfo]:
        params = {"account_id": account_id, "now": self._t(now), "limit": limit, "after": after}
        rows = self._db.all(_LIST_FIRST if after is None else _LIST_AFTER, params)
        return [
            SessionInfo(
                id=str(row[0]),
                device=""
                if row[1] is None
                else self._p.open(bytes(row[1]), f"session:{row[0]}:device"),
                created_at=self._read_t(row[2]),
                last_used_at=self._read_t(row[3]),
                expires_at=self._read_t(row[4]),
            )
            for row in rows
        ]

    def purge_expired(self, now: datetime, limit: int) -> int:
        params = {"now": self._t(now), "limit": limit}
        self._db.count(_PURGE_SPENT, params)
        return self._db.count(_PURGE, params)
