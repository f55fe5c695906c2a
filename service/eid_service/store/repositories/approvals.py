"""Approval requests (domain/approval.py). Each change of state is one
conditional UPDATE, so of concurrent decisions, claims or collections (in
any process) exactly one takes effect. The QR token is kept as a keyed
digest; the verification code and the party's note are sealed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eid_service.domain.approval import ApprovalRequest, ApprovalState
from eid_service.domain.party import PartyStatus
from eid_service.domain.share import Attribute
from eid_service.store.repositories.base import Repository
from eid_service.store.sql import Sql
from eid_service.use_cases.ports import ListedApproval, Subject

TOKEN_PURPOSE = "approval-token"  # noqa: S105 (a digest purpose, not a secret)
_PENDING = ApprovalState.PENDING.value

_COLUMNS = (
    "a.id, a.party_id, a.attributes, a.code_enc, a.created_at, a.expires_at, a.account_id,"
    " a.subject, a.message_enc, a.state, a.code_attempts, a.decided_at, a.collected_at,"
    " a.token_digest IS NOT NULL"
)
_INSERT = Sql(
    "INSERT INTO approval_requests (id, party_id, account_id, subject, token_digest,"
    " attributes, code_enc, message_enc, state, code_attempts, created_at, expires_at)"
    " VALUES (:id, :party_id, :account_id, :subject, :token_digest, :attributes, :code,"
    " :message, :pending, 0, :created_at, :expires_at)"
)
_GET = Sql(f"SELECT {_COLUMNS} FROM approval_requests a WHERE a.id = :id")  # noqa: S608
_BY_TOKEN = Sql(
    f"SELECT {_COLUMNS} FROM approval_requests a WHERE a.token_digest = :digest"  # noqa: S608
)
_CLAIM = Sql(
    "UPDATE approval_requests SET account_id = :account_id, subject = :subject"
    " WHERE token_digest = :digest AND account_id IS NULL AND state = :pending"
    " AND expires_at > :now RETURNING id"
)
_DECIDE = Sql(
    "UPDATE approval_requests SET state = :state, decided_at = :now"
    " WHERE id = :id AND account_id = :account_id AND state = :pending AND expires_at > :now"
)
# The last allowed wrong code voids the request in the same statement.
_WRONG_CODE = Sql(
    "UPDATE approval_requests SET code_attempts = code_attempts + 1,"
    " state = CASE WHEN code_attempts + 1 >= :max THEN :voided ELSE state END,"
    " decided_at = CASE WHEN code_attempts + 1 >= :max THEN :now ELSE decided_at END"
    " WHERE id = :id AND state = :pending AND expires_at > :now RETURNING code_attempts"
)
_COLLECT = Sql(
    "UPDATE approval_requests SET collected_at = :now"
    " WHERE id = :id AND party_id = :party_id AND collected_at IS NULL"
    " AND (state <> :pending OR expires_at <= :now)"
    " RETURNING id, party_id, attributes, code_enc, created_at, expires_at, account_id,"
    " subject, message_enc, state, code_attempts, decided_at, collected_at,"
    " token_digest IS NOT NULL"
)
_LISTED = (
    f"SELECT {_COLUMNS}, p.name FROM approval_requests a"  # noqa: S608 (constants)
    " JOIN relying_parties p ON p.id = a.party_id"
    " WHERE a.account_id = :account_id AND a.state = :pending AND a.expires_at > :now"
    " AND p.disabled_at IS NULL AND p.status = :active"
)
_NEWEST_FIRST = " ORDER BY a.created_at DESC, a.id DESC LIMIT :limit"
# The cursor's row is looked for among the caller's own: another's tells nothing.
_CURSOR = "SELECT created_at FROM approval_requests WHERE id = :after AND account_id = :account_id"
_AFTER = f" AND (a.created_at < ({_CURSOR}) OR (a.created_at = ({_CURSOR}) AND a.id < :after))"
_PAGE_FIRST = Sql(_LISTED + _NEWEST_FIRST)
_PAGE_AFTER = Sql(_LISTED + _AFTER + _NEWEST_FIRST)
_PURGE = Sql(
    "DELETE FROM approval_requests WHERE id IN"
    " (SELECT id FROM approval_requests WHERE expires_at <= :before LIMIT :limit)"
)


def _attributes(text: str) -> frozenset[Attribute]:
    return frozenset(Attribute(v) for v in text.split(",") if v)


class ApprovalRepository(Repository):
    def add(self, request: ApprovalRequest, token: str | None) -> None:
        seal = self._p.seal
        self._db.count(
            _INSERT,
            {
                "id": request.id,
                "party_id": request.party_id,
                "account_id": request.account_id,
                "subject": request.subject,
                "token_digest": None if token is None else self._digest(token),
                "attributes": ",".join(sorted(a.value for a in request.attributes)),
                "code": seal(request.code, f"approval:{request.id}:code"),
                "message": seal(request.message, f"approval:{request.id}:message")
                if request.message
                else None,
                "pending": _PENDING,
                "created_at": self._t(request.created_at),
                "expires_at": self._t(request.expires_at),
            },
        )

    def get(self, approval_id: str) -> ApprovalRequest | None:
        row = self._db.one(_GET, {"id": approval_id})
        return None if row is None else self._request(row)

    def by_token(self, token: str) -> ApprovalRequest | None:
        row = self._db.one(_BY_TOKEN, {"digest": self._digest(token)})
        return None if row is None else self._request(row)

    def claim(self, token: str, account_id: str, subject: Subject, now: datetime) -> str | None:
        params = {
            "digest": self._digest(token),
            "account_id": account_id,
            "subject": subject,
            "pending": _PENDING,
            "now": self._t(now),
        }
        row = self._db.one(_CLAIM, params)
        return None if row is None else str(row[0])

    def decide(
        self, approval_id: str, account_id: str, state: ApprovalState, now: datetime
    ) -> bool:
        params = {
            "id": approval_id,
            "account_id": account_id,
            "state": state.value,
            "pending": _PENDING,
            "now": self._t(now),
        }
        return self._db.count(_DECIDE, params) == 1

    def count_wrong_code(self, approval_id: str, max_attempts: int, now: datetime) -> int | None:
        params = {
            "id": approval_id,
            "max": max_attempts,
            "voided": ApprovalState.VOIDED.value,
            "pending": _PENDING,
            "now": self._t(now),
        }
        row = self._db.one(_WRONG_CODE, params)
        return None if row is None else max(0, max_attempts - int(row[0]))

    def collect(self, approval_id: str, party_id: str, now: datetime) -> ApprovalRequest | None:
        params = {"id": approval_id, "party_id": party_id, "pending": _PENDING, "now": self._t(now)}
        row = self._db.one(_COLLECT, params)
        return None if row is None else self._request(row)

    def pending_for(
        self, account_id: str, now: datetime, after: str | None, limit: int
    ) -> list[ListedApproval]:
        params = {
            "account_id": account_id,
            "pending": _PENDING,
            "active": PartyStatus.ACTIVE.value,
            "now": self._t(now),
            "after": after,
            "limit": limit,
        }
        rows = self._db.all(_PAGE_FIRST if after is None else _PAGE_AFTER, params)
        return [ListedApproval(self._request(row), str(row[14])) for row in rows]

    def purge_expired(self, before: datetime, limit: int) -> int:
        return self._db.count(_PURGE, {"before": self._t(before), "limit": limit})

    def _digest(self, token: str) -> bytes:
        return self._p.hasher.digest(TOKEN_PURPOSE, token)

    def _request(self, row: tuple[Any, ...]) -> ApprovalRequest:
        approval_id = row[0]
        return ApprovalRequest(
            id=approval_id,
            party_id=row[1],
            attributes=_attributes(row[2]),
            code=self._p.open(bytes(row[3]), f"approval:{approval_id}:code"),
            created_at=self._read_t(row[4]),
            expires_at=self._read_t(row[5]),
            account_id=row[6],
            subject=None if row[7] is None else bytes(row[7]),
            message=""
            if row[8] is None
            else self._p.open(bytes(row[8]), f"approval:{approval_id}:message"),
            state=ApprovalState(row[9]),
            code_attempts=int(row[10]),
            decided_at=None if row[11] is None else self._read_t(row[11]),
            collected_at=None if row[12] is None else self._read_t(row[12]),
            by_qr=bool(row[13]),
        )
