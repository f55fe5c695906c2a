"""Relying parties and their API keys (stored only as keyed digests)."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import RowMapping, delete, func, insert, select

from eid_service.domain.party import RelyingParty, new_party_id
from eid_service.domain.share import Attribute
from eid_service.security.keyed_hash import new_secret_token
from eid_service.store.models import PartyFailureRow, RelyingPartyRow
from eid_service.store.repositories.base import Repository, rowcount

API_KEY_PURPOSE = "api-key"
API_KEY_PREFIX = "eidk"
# Concurrent failures of one party land on one of these rows at random.
FAILURE_SHARDS = 8

_PARTY = select(RelyingPartyRow.id, RelyingPartyRow.name, RelyingPartyRow.scopes)


class RelyingPartyRepository(Repository):
    def create(
        self, name: str, scopes: frozenset[Attribute], now: datetime
    ) -> tuple[RelyingParty, str]:
        """A new party and its API key; the key is shown once and never stored."""
        party = RelyingParty(id=new_party_id(), name=name, scopes=scopes)
        api_key = new_secret_token(API_KEY_PREFIX)
        self._c.execute(
            insert(RelyingPartyRow).values(
                id=party.id,
                name=name,
                api_key_digest=self._p.hasher.digest(API_KEY_PURPOSE, api_key),
                scopes=",".join(sorted(a.value for a in scopes)),
                created_at=now,
            )
        )
        return party, api_key

    def by_api_key(self, api_key: str) -> RelyingParty | None:
        digest = self._p.hasher.digest(API_KEY_PURPOSE, api_key)
        row = self._c.execute(
            _PARTY.where(
                RelyingPartyRow.api_key_digest == digest, RelyingPartyRow.disabled_at.is_(None)
            )
        ).first()
        return None if row is None else _to_domain(row._mapping)

    def get(self, party_id: str) -> RelyingParty | None:
        row = self._c.execute(
            _PARTY.where(RelyingPartyRow.id == party_id, RelyingPartyRow.disabled_at.is_(None))
        ).first()
        return None if row is None else _to_domain(row._mapping)

    def list_all(self) -> list[RelyingParty]:
        rows = self._c.execute(_PARTY.order_by(RelyingPartyRow.created_at)).mappings()
        return [_to_domain(r) for r in rows]

    def failures_since(self, party_id: str, window_start: datetime) -> int:
        total = self._c.scalar(
            select(func.coalesce(func.sum(PartyFailureRow.failures), 0)).where(
                PartyFailureRow.party_id == party_id,
                PartyFailureRow.window_start == window_start,
            )
        )
        return int(total or 0)

    def record_failure(self, party_id: str, window_start: datetime) -> None:
        stmt = self._upsert(PartyFailureRow).values(
            party_id=party_id,
            window_start=window_start,
            shard=secrets.randbelow(FAILURE_SHARDS),
            failures=1,
        )
        self._c.execute(
            stmt.on_conflict_do_update(
                index_elements=[
                    PartyFailureRow.party_id,
                    PartyFailureRow.window_start,
                    PartyFailureRow.shard,
                ],
                set_={"failures": PartyFailureRow.failures + 1},
            )
        )

    def purge_failures(self, before: datetime) -> int:
        result = self._c.execute(
            delete(PartyFailureRow).where(PartyFailureRow.window_start < before)
        )
        return rowcount(result)


def _to_domain(row: RowMapping) -> RelyingParty:
    scopes = frozenset(Attribute(v) for v in row["scopes"].split(",") if v)
    return RelyingParty(id=row["id"], name=row["name"], scopes=scopes)
