"""Share-signing keys: made once, rotated, revoked, published, cached."""

from __future__ import annotations

import json
from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from eid_service.domain.errors import InvalidInput, NotFound, PreconditionFailed
from eid_service.domain.share import Attribute, ShareMode
from eid_service.domain.signing_key import KeyState
from eid_service.use_cases.signing_keys import (
    KEY_CACHE_TTL_SECONDS,
    ensure_signing_key,
    longest_share,
    published_keys,
    revoke_signing_key,
    rotate_signing_key,
)
from tests.unit.use_case_kit import LAN, World, refused

A = Attribute


def _states(world: World) -> dict[str, KeyState]:
    return {k.record.key_id: k.record.state for k in world.uow.state.signing_keys.values()}


def _wait_for_caches(world: World) -> None:
    world.clock.advance(timedelta(seconds=KEY_CACHE_TTL_SECONDS))


async def test_the_first_start_makes_one_key_and_keeps_the_rings_keys_retired(
    world: World,
) -> None:
    world.uow.state.signing_keys.clear()
    legacy = {"k-20261124-3f9a1c": Ed25519PrivateKey.generate()}

    made = await ensure_signing_key(world.uow, legacy, world.clock())
    again = await ensure_signing_key(world.uow, legacy, world.clock())

    states = _states(world)
    assert made and not again
    assert states.pop("k-20261124-3f9a1c") is KeyState.RETIRED
    (current,) = states.items()
    assert current[1] is KeyState.CURRENT and len(current[0]) == 6


async def test_after_a_rotation_old_shares_still_redeem_and_new_ones_use_the_new_key(
    world: World,
) -> None:
    await world.active(LAN)
    bank = world.party()
    old = await world.shared_by(LAN, [A.FULL_NAME], multi_use=True)

    new_key = await rotate_signing_key(world.uow, world.clock())
    _wait_for_caches(world)
    new = await world.shared_by(LAN, [A.FULL_NAME], mode=ShareMode.OFFLINE)

    assert (await world.redeem(bank, old.token)).verified
    assert new.key_id == new_key != old.key_id
    assert _states(world)[old.key_id] is KeyState.RETIRED
    assert (await world.redeem(bank, new.token)).verified


async def test_a_revoked_key_stops_what_it_signed_and_a_new_key_takes_over(
    world: World,
) -> None:
    await world.active(LAN)
    bank = world.party()
    online = await world.shared_by(LAN, [A.FULL_NAME])
    offline = await world.shared_by(LAN, [A.FULL_NAME], mode=ShareMode.OFFLINE)

    successor = await revoke_signing_key(world.uow, online.key_id, world.clock())
    _wait_for_caches(world)

    for issued in (online, offline):
        error = await refused(world.redeem(bank, issued.token))
        assert isinstance(error, PreconditionFailed) and error.reason == "SHARE_KEY_REVOKED"
    assert successor is not None and _states(world)[successor] is KeyState.CURRENT
    fresh = await world.shared_by(LAN, [A.FULL_NAME])
    assert fresh.key_id == successor and (await world.redeem(bank, fresh.token)).verified
    unknown = await refused(revoke_signing_key(world.uow, "knope", world.clock()))
    assert isinstance(unknown, NotFound)


async def test_a_change_reaches_a_process_within_the_cache_ttl(world: World) -> None:
    before = (await world.keys()).current_key_id

    await rotate_signing_key(world.uow, world.clock())
    stale = (await world.keys()).current_key_id
    _wait_for_caches(world)

    assert stale == before != (await world.keys()).current_key_id


async def test_published_keys_keep_retired_keys_and_tell_revoked_ones_while_they_matter(
    world: World,
) -> None:
    first = (await world.keys()).current_key_id
    second = await rotate_signing_key(world.uow, world.clock())
    third = await rotate_signing_key(world.uow, world.clock())
    await revoke_signing_key(world.uow, second, world.clock())
    _wait_for_caches(world)

    shown = await published_keys(world.uow, world.ctx.signing_keys, world.clock())
    states = {k.record.key_id: k.record.state for k in shown.keys}
    jwks = json.loads(shown.jwks_json)
    span = longest_share(world.ctx.share_policy)
    world.clock.advance(span)
    later = await published_keys(world.uow, world.ctx.signing_keys, world.clock())

    assert states == {first: KeyState.RETIRED, second: KeyState.REVOKED, third: KeyState.CURRENT}
    assert {k["kid"] for k in jwks["keys"]} == {first, third}
    assert all(k["kty"] == "OKP" and k["crv"] == "Ed25519" for k in jwks["keys"])
    # A retired key stays published (receipts it signed stay checkable); the
    # revoked one goes once its shares could no longer have been valid.
    assert sorted(k.record.key_id for k in later.keys) == sorted([first, third])
    retired = next(k for k in later.keys if k.record.key_id == first)
    assert retired.not_after is not None and retired.not_after <= world.clock()


async def test_a_payload_naming_a_key_nobody_has_is_invalid(world: World) -> None:
    await world.active(LAN)
    bank = world.party()
    issued = await world.shared_by(LAN, [A.FULL_NAME])
    world.uow.state.signing_keys.pop(issued.key_id)
    await ensure_signing_key(world.uow, {}, world.clock())
    _wait_for_caches(world)

    error = await refused(world.redeem(bank, issued.token))

    assert isinstance(error, InvalidInput) and error.reason == "SHARE_KEY_UNKNOWN"
