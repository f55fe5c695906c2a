"""Signed receipts of successful verifications, and the access history a
citizen reads: every verification attempt in the audit log, newest first,
with the receipt of each one that succeeded."""

from __future__ import annotations

from eid_service.domain.party import VerifyMode
from eid_service.domain.share import Attribute
from eid_service.store.repositories.base import Repository
from eid_service.store.sql import Row, Sql
from eid_service.use_cases.ports import AccessRecord, VerificationRecord

_INSERT = Sql(
    "INSERT INTO verification_receipts (id, account_id, party_id, attributes, receipt)"
    " VALUES (:id, :account_id, :party_id, :attributes, :receipt)"
)
_GET = Sql("SELECT receipt FROM verification_receipts WHERE id = :id")
# Verify attempts are the audit actions "verify.<mode>".
_HISTORY = (
    "SELECT e.id, e.party_id, p.name, e.action, e.outcome, e.created_at, r.attributes,"
    " r.receipt, e.actor FROM audit_events e LEFT JOIN relying_parties p ON p.id = e.party_id"
    " LEFT JOIN verification_receipts r ON r.id = e.id"
    " WHERE e.account_id = :account_id AND e.action LIKE :verify_actions"
)
_NEWEST_FIRST = " ORDER BY e.created_at DESC, e.id DESC LIMIT :limit"
# The cursor's row is looked for among the caller's own: another's tells nothing.
_CURSOR = "SELECT created_at FROM audit_events WHERE id = :after AND account_id = :account_id"
_AFTER = f" AND (e.created_at < ({_CURSOR}) OR (e.created_at = ({_CURSOR}) AND e.id < :after))"
_FIRST = Sql(_HISTORY + _NEWEST_FIRST)
_NEXT = Sql(_HISTORY + _AFTER + _NEWEST_FIRST)


class ReceiptRepository(Repository):
    def add(self, record: VerificationRecord) -> None:
        self._db.count(
            _INSERT,
            {
                "id": record.verification_id,
                "account_id": record.account_id,
                "party_id": record.party_id,
                "attributes": ",".join(sorted(a.value for a in record.attributes)),
                "receipt": record.receipt,
            },
        )

    def get(self, verification_id: str) -> str | None:
        row = self._db.one(_GET, {"id": verification_id})
        return None if row is None else str(row[0])

    def history(self, account_id: str, after: str | None, limit: int) -> list[AccessRecord]:
        params = {"account_id": account_id, "verify_actions": "verify.%", "limit": limit}
        if after is None:
            rows = self._db.all(_FIRST, params)
        else:
            rows = self._db.all(_NEXT, {**params, "after": after})
        return [self._record(row) for row in rows]

    def _record(self, row: Row) -> AccessRecord:
        attributes = frozenset(Attribute(v) for v in (row[6] or "").split(",") if v)
        return AccessRecord(
            verification_id=row[0],
            party_id=row[1] or "",
            party_name=row[2] or "",
            method=VerifyMode(row[3].removeprefix("verify.")),
            verified=row[4] == "verified",
            attributes=attributes,
            at=self._read_t(row[5]),
            receipt=row[7] or "",
            guardian_account_id=row[8] or "",
        )
