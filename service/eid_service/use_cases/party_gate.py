"""What one server process knows about each party's bucket (party_limits.py),
so that a busy party's calls do not all queue on its one bucket row.

The party's bucket is one row every call of the party would update; on
PostgreSQL each update holds the row until its transaction commits, so a
busy party's calls would commit one after another (measured: a third fewer
Verify calls a second). Instead, a process that is busy with a party (BUSY
calls of it in flight) leases a batch of its tokens in one short
transaction, LEASE_PER_CALL for each call in flight, at most a tenth of the
bucket and at most what it refills during a LEASE, and spends them on the
next calls without touching the row; leased tokens left when the lease ends
are dropped, never given to anyone else. A lease is taken from the shared
bucket like any token, so all processes together never admit more than the
bucket holds; calls that find no lease take their token in their own
transaction (`admit`), as every call of a quiet party does. Parties with
small limits never lease (a tenth of their bucket, or a second's refill, is
under 2 tokens): their limit is counted call by call.

A refusal tells the process when the party's bucket will next hold a token
(only refills add tokens, at a known rate): until then the party's calls
are refused here without touching the database."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from eid_service.domain.errors import TooManyAttempts
from eid_service.domain.party import RelyingParty
from eid_service.domain.party_limits import PARTY_RATE_LIMITED, party_bucket, rate_limited
from eid_service.use_cases.ports import UnitOfWork

LEASE = timedelta(seconds=1)
BUSY = 4
LEASE_PER_CALL = 4
# A lease is at most this share of the bucket (so that processes share it).
LEASE_SHARE = 10
# After a lease the bucket could not give, calls take their own tokens this long.
LEASE_BACKOFF = timedelta(seconds=1)
MAX_PARTIES = 10_000
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Ticket:
    """A call's standing with its party's bucket: `paid` when its party token
    is taken already, one this process leased (or, for an approval Verify,
    the one its wait took): its transaction leaves the party's row alone."""

    paid: bool = False


@dataclass
class _Party:
    tokens: int = 0
    expires: datetime = _NEVER
    refused_until: datetime = _NEVER
    no_lease_until: datetime = _NEVER
    # The party's calls in flight in this process (this one included).
    in_flight: int = 0
    leasing: asyncio.Future[None] | None = None

    def lease_size(self, party: RelyingParty, now: datetime) -> int:
        if self.in_flight < BUSY or now < self.no_lease_until:
            return 1
        refill = math.ceil(party.rate_per_minute / 60 * LEASE.total_seconds())
        share = party.rate_per_minute // LEASE_SHARE
        return max(1, min(LEASE_PER_CALL * self.in_flight, share, refill))


class PartyGate:
    """Per process; keyed by the party and its limit, so that what was
    learnt under a limit an operator has since changed is not used."""

    def __init__(self) -> None:
        self._parties: dict[tuple[str, int], _Party] = {}

    def _of(self, party: RelyingParty) -> _Party:
        key = (party.id, party.rate_per_minute)
        found = self._parties.get(key)
        if found is None:
            if len(self._parties) >= MAX_PARTIES:
                self._parties.clear()
            found = self._parties[key] = _Party()
        return found

    @contextlib.asynccontextmanager
    async def enter(
        self, uow: UnitOfWork, party: RelyingParty, now: datetime
    ) -> AsyncIterator[Ticket]:
        """A call of `party`: refused at once while its bucket is known to be
        empty; given a leased token if there is one (or a lease can be had);
        otherwise the call's own transaction takes its token. A refusal for
        the party raised inside is learnt."""
        state = self._of(party)
        state.in_flight += 1
        try:
            yield await self._ticket(uow, party, state, now)
        except TooManyAttempts as refused:
            self.learn(party, refused, now)
            raise
        finally:
            state.in_flight -= 1

    async def _ticket(
        self, uow: UnitOfWork, party: RelyingParty, state: _Party, now: datetime
    ) -> Ticket:
        if now < state.refused_until:
            raise rate_limited(PARTY_RATE_LIMITED, (state.refused_until - now).total_seconds())
        if state.leasing is not None:
            await asyncio.shield(state.leasing)
        if state.tokens == 0 or now >= state.expires:
            size = state.lease_size(party, now)
            if size < 2 or state.leasing is not None:
                return Ticket(paid=False)
            if not await self._lease(uow, party, state, size, now):
                return Ticket(paid=False)
        state.tokens -= 1
        return Ticket(paid=True)

    async def _lease(
        self, uow: UnitOfWork, party: RelyingParty, state: _Party, size: int, now: datetime
    ) -> bool:
        done = state.leasing = asyncio.get_running_loop().create_future()
        bucket = party_bucket(party)
        try:
            refused = await uow.atomically(lambda r: r.rate_buckets.take([bucket], now, size))
        finally:
            state.leasing = None
            done.set_result(None)
        if refused:
            state.no_lease_until = now + LEASE_BACKOFF
            return False
        state.tokens, state.expires = size, now + LEASE
        return True

    def learn(self, party: RelyingParty, refused: TooManyAttempts, now: datetime) -> None:
        if refused.reason != PARTY_RATE_LIMITED:
            return
        wait = float(refused.metadata.get("retry_after_seconds", "0"))
        state = self._of(party)
        state.refused_until = now + timedelta(seconds=wait)
        state.tokens = 0
