"""A busy party's tokens leased in batches by each process (party_gate.py):
its calls stop updating its bucket row one by one, and processes together
still never admit more than the bucket holds. (The fake store's transactions
yield to the event loop, so gathered calls are in flight together.)"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from eid_service.domain.errors import TooManyAttempts
from eid_service.domain.party import RelyingParty
from eid_service.domain.party_limits import party_bucket
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.party_gate import BUSY, LEASE_PER_CALL, PartyGate
from eid_service.use_cases.verified import Verification
from eid_service.use_cases.verify_demographic import DemographicCommand, verify_demographic
from tests.unit.test_use_case_verify_demographic import _lan_claim
from tests.unit.use_case_kit import LAN, World, unknown_id


async def _call(world: World, ctx: UseCaseContext, party: RelyingParty, serial: int | None) -> bool:
    """A demographic claim, about another ID number each time unless `serial`
    is None (then a true claim about Lan, who is active); False if refused.
    (100 failed claims a minute would pause the party: PARTY_THROTTLED.)"""
    pid = LAN.personal_id if serial is None else unknown_id(serial)
    cmd = DemographicCommand(pid, _lan_claim())
    reply = world.reply(Verification, "verify", cmd, "")
    try:
        await verify_demographic(world.uow, ctx, party, cmd, reply)
    except TooManyAttempts:
        return False
    return True


def _party_tokens(world: World, party: RelyingParty) -> float:
    tokens: float = world.uow.state.rate_buckets[party_bucket(party).key][0]
    return tokens


async def _together(
    world: World, ctx: UseCaseContext, party: RelyingParty, calls: int, serial: int | None = 0
) -> list[bool]:
    return list(
        await asyncio.gather(
            *(
                _call(world, ctx, party, None if serial is None else serial + n)
                for n in range(calls)
            )
        )
    )


async def test_a_busy_party_s_calls_spend_a_lease_not_the_bucket_row(world: World) -> None:
    party = world.party(rate=6000)  # 100 a second
    writes = world.uow.writes
    # The first calls take their own tokens; with BUSY in flight, the next
    # leases LEASE_PER_CALL for each, and the calls after it wait for that
    # lease rather than take one more.
    assert all(await _together(world, world.ctx, party, 8))
    lease = LEASE_PER_CALL * BUSY
    assert world.uow.writes - writes == 8 + 1
    assert _party_tokens(world, party) == 6000 - (BUSY - 1) - lease
    spent = 8 - (BUSY - 1)
    for n in range(lease - spent):  # the rest of the lease: the row is left alone
        assert await _call(world, world.ctx, party, 100 + n)
    assert _party_tokens(world, party) == 6000 - (BUSY - 1) - lease
    assert await _call(world, world.ctx, party, 200)  # one call in flight: its own token
    assert _party_tokens(world, party) == 6000 - BUSY - lease


async def test_two_processes_leasing_never_admit_more_than_the_bucket(world: World) -> None:
    await world.active(LAN)
    party = world.party(rate=240)  # leases of 4 (what refills in a second)
    processes = [world.ctx, replace(world.ctx, party_gate=PartyGate())]
    admitted = 0
    for turn in range(60):  # the clock stands still: nothing refills meanwhile
        admitted += sum(await _together(world, processes[turn % 2], party, 6, None))
    assert admitted == 240
    assert not any(await _together(world, processes[0], party, 6, None))
    assert not any(await _together(world, processes[1], party, 6, None))


async def test_a_lease_the_bucket_cannot_give_leaves_each_call_to_take_its_own(
    world: World,
) -> None:
    party = world.party(rate=6000)
    # Other processes spent the bucket down to 3 tokens.
    key = party_bucket(party).key
    world.uow.state.rate_buckets[key] = (3.0, world.clock().timestamp())
    assert sum(await _together(world, world.ctx, party, 8)) == 3


async def test_small_limits_are_counted_call_by_call(world: World) -> None:
    party = world.party(rate=19)  # a tenth of the bucket is under 2 tokens
    writes = world.uow.writes
    assert all(await _together(world, world.ctx, party, 8))
    assert world.uow.writes - writes == 8  # no lease
    assert _party_tokens(world, party) == 19 - 8
