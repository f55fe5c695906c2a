"""Relying parties by API key, served from a short-lived cache."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from eid_service.domain.errors import PermissionDenied, Unauthenticated
from eid_service.domain.party import PartyStatus
from eid_service.use_cases.auth import authenticate_party
from eid_service.use_cases.party_cache import TTL_SECONDS
from tests.unit.use_case_kit import World, refused

JUST_PAST_TTL = timedelta(seconds=TTL_SECONDS + 0.001)


async def test_a_party_is_found_by_its_api_key(world: World) -> None:
    bank = world.party("Bank")
    world.party("Telco")
    assert await authenticate_party(world.uow, world.ctx, world.api_keys[bank.id]) == bank
    assert world.uow.reads == 1


async def test_a_missing_or_wrong_key_is_refused(world: World) -> None:
    world.party()
    missing = await refused(authenticate_party(world.uow, world.ctx, None))
    empty = await refused(authenticate_party(world.uow, world.ctx, ""))
    wrong = await refused(authenticate_party(world.uow, world.ctx, "eidk_wrong"))

    assert isinstance(missing, Unauthenticated) and missing.reason == "API_KEY_MISSING"
    assert empty.reason == "API_KEY_MISSING"
    assert isinstance(wrong, Unauthenticated) and wrong.reason == "API_KEY_INVALID"
    assert world.uow.reads == 1  # a missing key needs no lookup


async def test_a_wrong_key_is_looked_up_every_time(world: World) -> None:
    for _ in range(3):
        await refused(authenticate_party(world.uow, world.ctx, "eidk_wrong"))
    assert world.uow.reads == 3


async def test_a_cached_party_is_served_without_a_transaction_until_the_ttl(
    world: World,
) -> None:
    bank = world.party()
    key = world.api_keys[bank.id]
    await authenticate_party(world.uow, world.ctx, key)

    world.clock.advance(timedelta(seconds=TTL_SECONDS))
    assert await authenticate_party(world.uow, world.ctx, key) == bank
    assert world.uow.reads == 1

    world.clock.advance(JUST_PAST_TTL - timedelta(seconds=TTL_SECONDS))
    assert await authenticate_party(world.uow, world.ctx, key) == bank
    assert world.uow.reads == 2


async def test_a_disabled_party_is_refused_once_its_cache_entry_lapses(world: World) -> None:
    bank = world.party()
    key = world.api_keys[bank.id]
    await authenticate_party(world.uow, world.ctx, key)
    world.uow.state.parties[bank.id].disabled_at = world.clock()

    assert await authenticate_party(world.uow, world.ctx, key) == bank  # still cached
    world.clock.advance(JUST_PAST_TTL)
    error = await refused(authenticate_party(world.uow, world.ctx, key))
    assert error.reason == "API_KEY_INVALID"


CERT = bytes(range(32))


def _bind(world: World, party_id: str, sha256: bytes) -> None:
    world.uow.run_now(lambda r: r.parties.set_client_certificate(party_id, sha256))


async def test_a_bound_party_needs_its_client_certificate(world: World) -> None:
    bank = world.party()
    _bind(world, bank.id, CERT)
    key = world.api_keys[bank.id]

    served = await authenticate_party(world.uow, world.ctx, key, lambda: CERT)
    without = await refused(authenticate_party(world.uow, world.ctx, key, lambda: None))
    other = await refused(authenticate_party(world.uow, world.ctx, key, lambda: b"\x00" * 32))
    default = await refused(authenticate_party(world.uow, world.ctx, key))

    assert served.id == bank.id and served.client_cert_sha256 == CERT
    assert isinstance(without, Unauthenticated)
    assert without.reason == default.reason == "CLIENT_CERTIFICATE_REQUIRED"
    assert isinstance(other, PermissionDenied) and other.reason == "CLIENT_CERTIFICATE_MISMATCH"


async def test_the_certificate_is_read_only_for_bound_parties(world: World) -> None:
    bank = world.party()

    def unread() -> bytes | None:
        raise AssertionError("an unbound party's call read the TLS peer")

    assert await authenticate_party(world.uow, world.ctx, world.api_keys[bank.id], unread) == bank


async def test_a_suspended_bound_party_without_its_certificate_learns_nothing(
    world: World,
) -> None:
    bank = world.party()
    _bind(world, bank.id, CERT)
    world.uow.run_now(lambda r: r.parties.set_status(bank.id, PartyStatus.SUSPENDED, world.clock()))
    key = world.api_keys[bank.id]

    stolen_key = await refused(authenticate_party(world.uow, world.ctx, key))
    with_cert = await refused(authenticate_party(world.uow, world.ctx, key, lambda: CERT))

    assert stolen_key.reason == "CLIENT_CERTIFICATE_REQUIRED"
    assert with_cert.reason == "PARTY_SUSPENDED"


async def test_calls_that_find_the_entry_lapsed_together_share_one_lookup(world: World) -> None:
    """A party's calls in flight when its entry lapses (every TTL under load)."""
    bank = world.party()
    key = world.api_keys[bank.id]
    await authenticate_party(world.uow, world.ctx, key)
    world.clock.advance(JUST_PAST_TTL)

    found = await asyncio.gather(
        *(authenticate_party(world.uow, world.ctx, key) for _ in range(16))
    )
    assert found == [bank] * 16
    assert world.uow.reads == 2  # the first call's, and one for the 16


async def test_concurrent_calls_with_one_wrong_key_share_its_lookup_and_all_are_refused(
    world: World,
) -> None:
    world.party()
    errors = await asyncio.gather(
        *(refused(authenticate_party(world.uow, world.ctx, "eidk_wrong")) for _ in range(16))
    )
    assert {e.reason for e in errors} == {"API_KEY_INVALID"}
    assert world.uow.reads == 1
    await refused(authenticate_party(world.uow, world.ctx, "eidk_wrong"))
    assert world.uow.reads == 2  # a wrong key is never remembered
