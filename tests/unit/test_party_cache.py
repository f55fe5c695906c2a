"""The party cache's shared lookups: one read for the callers that need it at
once, whoever of them goes away, and a failed read fails only its callers."""

from __future__ import annotations

import asyncio

import pytest

from eid_service.domain.party import RelyingParty
from eid_service.use_cases.party_cache import PartyCache
from tests.unit.use_case_kit import World


class Lookup:
    """A database read the test lets finish (or fail) when it chooses."""

    def __init__(self, party: RelyingParty | None) -> None:
        self.party = party
        self.started = 0
        self.release = asyncio.Event()
        self.error: Exception | None = None

    async def __call__(self) -> RelyingParty | None:
        self.started += 1
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return self.party


@pytest.fixture
def bank(world: World) -> RelyingParty:
    return world.party("Bank")


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_caller_that_goes_away_leaves_the_lookup_to_the_others(
    bank: RelyingParty,
) -> None:
    cache = PartyCache()
    lookup = Lookup(bank)
    first = asyncio.ensure_future(cache.load("eidk_bank", lookup))
    others = [asyncio.ensure_future(cache.load("eidk_bank", lookup)) for _ in range(3)]
    await _settle()
    first.cancel()  # the call that started the read: a deadline, a client gone
    await _settle()
    lookup.release.set()

    assert await asyncio.gather(*others) == [bank] * 3
    assert first.cancelled()
    assert lookup.started == 1
    assert cache.get("eidk_bank") == bank  # remembered for the next calls


async def test_a_failed_lookup_fails_its_callers_only(bank: RelyingParty) -> None:
    cache = PartyCache()
    failing = Lookup(bank)
    failing.error = ConnectionError("the database went away")
    waiting = [asyncio.ensure_future(cache.load("eidk_bank", failing)) for _ in range(4)]
    await _settle()
    failing.release.set()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert failing.started == 1

    working = Lookup(bank)
    working.release.set()
    assert await cache.load("eidk_bank", working) == bank
    assert working.started == 1


async def test_other_keys_do_not_wait_on_a_lookup(bank: RelyingParty) -> None:
    cache = PartyCache()
    slow = Lookup(bank)
    stuck = asyncio.ensure_future(cache.load("eidk_bank", slow))
    await _settle()
    quick = Lookup(None)
    quick.release.set()
    assert await cache.load("eidk_other", quick) is None
    slow.release.set()
    assert await stuck == bank
