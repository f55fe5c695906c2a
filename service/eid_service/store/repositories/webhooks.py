"""Relying parties' status webhooks, and who hears of an account's changes:
the parties holding a receipt of a successful verification of it in a mode
the citizen took part in (CITIZEN_PRESENT_MODES)."""

from __future__ import annotations

from datetime import datetime

from eid_service.domain.party import CITIZEN_PRESENT_MODES, PartyStatus
from eid_service.store.repositories.base import Repository
from eid_service.store.sql import Sql
from eid_service.use_cases.ports import WebhookTarget

# The same upsert on SQLite (3.24+) and PostgreSQL.
_SET = Sql(
    "INSERT INTO party_webhooks (party_id, url_enc, updated_at) VALUES (:party_id, :url, :now)"
    " ON CONFLICT (party_id) DO UPDATE SET url_enc = excluded.url_enc,"
    " updated_at = excluded.updated_at"
)
_CLEAR = Sql("DELETE FROM party_webhooks WHERE party_id = :party_id")
_GET = Sql(
    "SELECT w.url_enc, p.status, w.updated_at FROM party_webhooks w"
    " JOIN relying_parties p ON p.id = w.party_id"
    " WHERE w.party_id = :party_id AND p.disabled_at IS NULL"
)
# The audit actions ("verify.<mode>") of the modes whose receipts subscribe,
# passed as parameters (Sql takes no literals).
_PRESENT_ACTIONS = {
    f"action_{i}": f"verify.{mode.value}"
    for i, mode in enumerate(sorted(CITIZEN_PRESENT_MODES, key=lambda m: m.value))
}
_IN_PRESENT = ", ".join(f":{name}" for name in _PRESENT_ACTIONS)
# Few parties have a webhook; each is checked through the receipts' index. A
# receipt's id is its audit event's, whose action names the mode: the mode is
# read there (primary key), so receipts written before this rule count too.
_SUBSCRIBERS = Sql(
    "SELECT w.party_id FROM party_webhooks w JOIN relying_parties p ON p.id = w.party_id"  # noqa: S608 (constants)
    " WHERE p.disabled_at IS NULL AND EXISTS (SELECT 1 FROM verification_receipts r"
    " JOIN audit_events e ON e.id = r.id"
    " WHERE r.account_id = :account_id AND r.party_id = w.party_id"
    f" AND e.action IN ({_IN_PRESENT}))"
    " ORDER BY w.party_id"
)


def _context(party_id: str) -> str:
    return f"party_webhooks:{party_id}:url"


class PartyWebhookRepository(Repository):
    def set(self, party_id: str, url: str, now: datetime) -> None:
        sealed = self._p.seal(url, _context(party_id))
        self._db.count(_SET, {"party_id": party_id, "url": sealed, "now": self._t(now)})

    def clear(self, party_id: str) -> bool:
        return self._db.count(_CLEAR, {"party_id": party_id}) > 0

    def get(self, party_id: str) -> WebhookTarget | None:
        row = self._db.one(_GET, {"party_id": party_id})
        if row is None:
            return None
        return WebhookTarget(
            party_id=party_id,
            url=self._p.open(bytes(row[0]), _context(party_id)),
            suspended=row[1] == PartyStatus.SUSPENDED.value,
            updated_at=self._read_t(row[2]),
        )

    def subscribers(self, account_id: str) -> list[str]:
        params = {"account_id": account_id, **_PRESENT_ACTIONS}
        return [r[0] for r in self._db.all(_SUBSCRIBERS, params)]
