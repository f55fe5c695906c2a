"""Status events: a lock or unlock queues one event per party that verified
the citizen (with the citizen taking part: not by a demographic claim alone)
and has a webhook, in the same transaction; nothing for parties that never
verified, have no webhook or are deleted. What is sent names the
citizen by the party's pairwise subject and verifies with the published keys."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from eid_client.status_events import (
    SIGNATURE_HEADER,
    StatusEventVerificationError,
    verify_status_event,
)
from eid_service.domain.demographic import DemographicClaim, parse_claimed_birth_date
from eid_service.domain.notices import NoticeKind
from eid_service.domain.party import RelyingParty
from eid_service.domain.share import Attribute
from eid_service.use_cases.lock import LockProof, StateChange
from eid_service.use_cases.parties import delete_party, suspend_party
from eid_service.use_cases.party_webhooks import clear_webhook, set_webhook
from eid_service.use_cases.ports import OutgoingMessage
from eid_service.use_cases.status_events import (
    STATUS_EVENT_CHANNEL,
    Held,
    PreparedEvent,
    StatusChange,
    prepare_delivery,
    publish_status_change,
)
from eid_service.use_cases.verified import Verification
from eid_service.use_cases.verify_demographic import DemographicCommand, verify_demographic
from tests.unit.fake_store import MessageRow
from tests.unit.use_case_kit import LAN, MINH, PASSWORD, WRONG_PASSWORD, World

HOOK = "https://bank.example/eid/events"


def _events(world: World) -> list[tuple[str, str, MessageRow]]:
    """(message id, party id, row) of the queued status events, oldest first."""
    rows = [
        (i, m.destination or "", m)
        for i, m in world.uow.state.outbox.items()
        if m.channel == STATUS_EVENT_CHANNEL
    ]
    # The party is stored in clear too, for the dispatcher's per-party limit.
    assert all(m.party_id == party for _, party, m in rows)
    return rows


def _types(world: World) -> list[tuple[str, str]]:
    """(party id, event type) of the queued events."""
    rows = _events(world)
    assert all(m.notice is not None and m.notice.kind is NoticeKind.STATUS_EVENT for *_, m in rows)
    return [(party, m.notice.subject) for _, party, m in rows if m.notice is not None]


async def _subscribed(world: World, name: str, url: str = HOOK) -> RelyingParty:
    party = world.party(name)
    await set_webhook(world.uow, world.ctx, party.id, url)
    return party


async def _lock(world: World) -> None:
    await world.lock(LockProof.PASSWORD, citizen=LAN, password=PASSWORD)


async def _prepared(world: World, message_id: str) -> PreparedEvent | Held:
    row = world.uow.state.outbox[message_id]
    assert row.notice is not None
    notice, party_id = row.notice, row.destination or ""
    message = OutgoingMessage(
        message_id, row.channel, notice.kind, party_id, notice.subject, notice.body
    )
    return await prepare_delivery(world.uow, world.ctx, message, world.clock())


async def test_a_lock_and_an_unlock_reach_the_parties_that_verified_and_subscribed(
    world: World,
) -> None:
    await world.active(LAN)
    await world.active(MINH)
    bank, telco = await _subscribed(world, "Bank"), await _subscribed(world, "Telco")
    stranger = await _subscribed(world, "Never verified Lan")
    quiet = world.party("No webhook")
    for party in (bank, telco, quiet):
        assert (await world.verify(party, LAN.personal_id, PASSWORD)).verified
    assert (await world.verify(stranger, MINH.personal_id, PASSWORD)).verified
    assert not (await world.verify(stranger, LAN.personal_id, WRONG_PASSWORD)).verified

    await _lock(world)
    officer, key = world.officer()
    del officer
    await world.unlock_by_officer(key, LAN)

    locked, unlocked = StatusChange.LOCKED.value, StatusChange.UNLOCKED.value
    assert sorted(_types(world)) == sorted(
        [(bank.id, locked), (telco.id, locked), (bank.id, unlocked), (telco.id, unlocked)]
    )
    stored = [json.loads(m.notice.body) for *_, m in _events(world) if m.notice is not None]
    assert len({s["id"] for s in stored}) == 4  # an id per party and change


async def test_a_demographic_match_alone_subscribes_no_one(world: World) -> None:
    """A matching claim of name and birth date needs no citizen (both are on
    the ID card and on any form): its receipt does not make the party hear of
    the account. A password or a redeemed share, given by the citizen, does.
    Before, any receipt did: with only an ID number, a party heard of the
    citizen's lock, unlock and death (found by an attacker's pass)."""
    await world.active(LAN)
    clinic, bank = await _subscribed(world, "Clinic"), await _subscribed(world, "Bank")
    shop = await _subscribed(world, "Shop")
    claim = DemographicClaim("Nguyễn Thị Lan", parse_claimed_birth_date("1990-05-17"))
    for party in (clinic, bank, shop):
        cmd = DemographicCommand(LAN.personal_id, claim)
        reply = world.reply(Verification, "verify", (party.id, claim), "")
        assert (await verify_demographic(world.uow, world.ctx, party, cmd, reply)).verified
    assert (await world.verify(bank, LAN.personal_id, PASSWORD)).verified
    share = await world.shared_by(LAN, [Attribute.FULL_NAME])
    assert (await world.redeem(shop, share.token)).verified

    await _lock(world)

    locked = StatusChange.LOCKED.value
    assert sorted(_types(world)) == sorted([(bank.id, locked), (shop.id, locked)])


async def test_locking_a_locked_account_tells_no_one_again(world: World) -> None:
    await world.active(LAN)
    bank = await _subscribed(world, "Bank")
    assert (await world.verify(bank, LAN.personal_id, PASSWORD)).verified
    await _lock(world)
    again = await world.lock(LockProof.PASSWORD, citizen=LAN, password=PASSWORD)
    assert not again.changed
    assert _types(world) == [(bank.id, StatusChange.LOCKED.value)]


async def test_a_deleted_party_or_a_removed_webhook_hears_nothing(world: World) -> None:
    await world.active(LAN)
    gone, removed = await _subscribed(world, "Gone"), await _subscribed(world, "Removed")
    for party in (gone, removed):
        assert (await world.verify(party, LAN.personal_id, PASSWORD)).verified
    await delete_party(world.uow, world.ctx, gone.id)
    assert await clear_webhook(world.uow, removed.id)
    assert not await clear_webhook(world.uow, removed.id)
    await _lock(world)
    assert _types(world) == []


async def test_deactivation_is_published_by_whoever_deactivates(world: World) -> None:
    account = await world.active(LAN)
    bank = await _subscribed(world, "Bank")
    assert (await world.verify(bank, LAN.personal_id, PASSWORD)).verified
    world.uow.run_now(
        lambda r: publish_status_change(r, account.id, StatusChange.DEACTIVATED, world.clock())
    )
    assert _types(world) == [(bank.id, "account.deactivated")]


async def test_the_event_names_the_party_subject_and_verifies_with_the_published_keys(
    world: World,
) -> None:
    account = await world.active(LAN)
    bank = await _subscribed(world, "Bank")
    verification = await world.verify(bank, LAN.personal_id, PASSWORD)
    locked_at = world.clock()
    await _lock(world)
    ((message_id, _, _),) = _events(world)

    world.clock.advance(timedelta(seconds=30))  # sent a little later
    prepared = await _prepared(world, message_id)
    assert isinstance(prepared, PreparedEvent)
    assert prepared.url == HOOK
    for secret in (LAN.personal_id.encode(), account.id.encode(), LAN.phone.encode()):
        assert secret not in prepared.body
    keys = (await world.keys()).verification_keys
    headers = {SIGNATURE_HEADER.lower(): prepared.signature}
    event = verify_status_event(
        prepared.body, headers, keys, audience=bank.id, issuer="eid.vn", now=world.clock()
    )
    assert (event.type, event.audience, event.time) == ("account.locked", bank.id, locked_at)
    assert event.subject == verification.subject == world.ctx.pairwise_subject(bank.id, account.id)
    assert event.id == prepared.event_id
    assert event.signed_at == world.clock()

    tampered = prepared.body.replace(b"locked", b"unlocked")
    with pytest.raises(StatusEventVerificationError) as caught:
        verify_status_event(tampered, headers, keys, audience=bank.id, now=world.clock())
    assert caught.value.reason == "EVENT_SIGNATURE_INVALID"


async def test_queued_events_follow_the_party_url_and_wait_while_it_is_suspended(
    world: World,
) -> None:
    await world.active(LAN)
    bank = await _subscribed(world, "Bank")
    assert (await world.verify(bank, LAN.personal_id, PASSWORD)).verified
    await _lock(world)
    ((message_id, _, _),) = _events(world)

    moved = "https://bank.example/v2/events"
    await set_webhook(world.uow, world.ctx, bank.id, moved)
    prepared = await _prepared(world, message_id)
    assert isinstance(prepared, PreparedEvent) and prepared.url == moved

    await suspend_party(world.uow, world.ctx, bank.id)
    assert await _prepared(world, message_id) is Held.PARTY_SUSPENDED
    await clear_webhook(world.uow, bank.id)
    assert await _prepared(world, message_id) is Held.NO_WEBHOOK


async def test_sixteen_concurrent_locks_tell_each_party_once(world: World) -> None:
    await world.active(LAN)
    bank = await _subscribed(world, "Bank")
    assert (await world.verify(bank, LAN.personal_id, PASSWORD)).verified
    session = await world.sign_in(LAN)
    token = session.tokens.access_token
    done = await asyncio.gather(
        *(world.lock(LockProof.SESSION, access_token=token) for _ in range(16)),
        return_exceptions=True,
    )
    assert sum(1 for d in done if isinstance(d, StateChange) and d.changed) == 1
    assert _types(world) == [(bank.id, StatusChange.LOCKED.value)]
