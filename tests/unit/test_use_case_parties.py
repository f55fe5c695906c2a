"""Relying-party administration against the in-memory store: create, show,
list, suspend, resume, delete and rotate a key; and what the party's calls
meet afterwards (authenticate_party)."""

from __future__ import annotations

from datetime import timedelta

from eid_service.domain.errors import (
    InvalidInput,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    Unauthenticated,
)
from eid_service.domain.party import DEFAULT_MODES, RECENT_KEY_ROTATION, PartyStatus, VerifyMode
from eid_service.domain.share import Attribute
from eid_service.use_cases.auth import authenticate_party
from eid_service.use_cases.parties import (
    CreatedParty,
    NewParty,
    create_party,
    delete_party,
    list_parties,
    resume_party,
    rotate_party_key,
    set_party_scopes,
    show_party,
    suspend_party,
)
from eid_service.use_cases.party_cache import TTL_SECONDS
from tests.unit.use_case_kit import World, refused

PAST_TTL = timedelta(seconds=TTL_SECONDS + 1)
BASIC = frozenset({Attribute.FULL_NAME, Attribute.BIRTH_DATE, Attribute.GENDER})


async def _created(world: World, name: str = "Demo Bank", **changes: object) -> CreatedParty:
    cmd = NewParty(name, BASIC, **changes)  # type: ignore[arg-type]
    return await create_party(world.uow, world.ctx, cmd)


async def _authenticated(world: World, api_key: str) -> str:
    """The party id the key opens, or the reason it is refused (past the cache TTL)."""
    world.clock.advance(PAST_TTL)
    try:
        return (await authenticate_party(world.uow, world.ctx, api_key)).id
    except (Unauthenticated, PermissionDenied) as refusal:
        return refusal.reason


async def test_create_stores_every_field_in_one_write_and_shows_the_key_once(
    world: World,
) -> None:
    created = await _created(
        world,
        contact="it@demobank.vn",
        modes=frozenset({VerifyMode.PASSWORD}),
        rate_per_minute=60,
        citizen_rate_per_minute=3,
    )
    party = created.record.party
    assert world.uow.writes == 1
    assert created.api_key.startswith("eidk_")
    assert (created.record.created_at, created.record.suspended_at) == (world.clock(), None)
    shown = await show_party(world.uow, party.id)
    assert shown == created.record
    assert (party.contact, party.modes, party.rate_per_minute, party.citizen_rate_per_minute) == (
        "it@demobank.vn",
        frozenset({VerifyMode.PASSWORD}),
        60,
        3,
    )
    assert await authenticate_party(world.uow, world.ctx, created.api_key) == party
    # Only a digest is kept: the key itself is nowhere in the store.
    assert created.api_key not in repr(world.uow.state.parties)


async def test_create_applies_the_defaults_and_refuses_a_bad_field(world: World) -> None:
    party = (await _created(world)).record.party
    assert (party.status, party.modes) == (PartyStatus.ACTIVE, DEFAULT_MODES)
    assert VerifyMode.PASSWORD not in party.modes
    assert (party.rate_per_minute, party.citizen_rate_per_minute) == (600, 10)

    bad = await refused(_created(world, rate_per_minute=10, citizen_rate_per_minute=11))
    assert isinstance(bad, InvalidInput) and bad.reason == "CITIZEN_RATE_LIMIT_INVALID"
    assert world.uow.writes == 1  # nothing stored


async def test_an_unknown_or_malformed_party_id_is_named(world: World) -> None:
    calls = (
        show_party(world.uow, "rp_nobody"),
        suspend_party(world.uow, world.ctx, "rp_nobody"),
        resume_party(world.uow, world.ctx, "rp_nobody"),
        delete_party(world.uow, world.ctx, "rp_nobody"),
        rotate_party_key(world.uow, world.ctx, "rp_nobody"),
    )
    for call in calls:
        missing = await refused(call)
        assert isinstance(missing, NotFound) and missing.reason == "PARTY_NOT_FOUND"
        assert "rp_nobody" in missing.message
    malformed = await refused(show_party(world.uow, "rp nobody; --"))
    assert isinstance(malformed, InvalidInput) and malformed.reason == "PARTY_ID_INVALID"


async def test_list_pages_through_undeleted_parties_oldest_first(world: World) -> None:
    ids = []
    for n in range(5):
        ids.append((await _created(world, f"Party {n}")).record.party.id)
        world.clock.advance(timedelta(seconds=1))
    await delete_party(world.uow, world.ctx, ids[1])

    first = await list_parties(world.uow, 2, "")
    second = await list_parties(world.uow, 2, first.next_page_token)
    assert [r.party.id for r in first.parties] == [ids[0], ids[2]]
    assert [r.party.id for r in second.parties] == [ids[3], ids[4]]
    assert second.next_page_token == ""
    every = await list_parties(world.uow, 0, "")
    assert [r.party.name for r in every.parties] == ["Party 0", "Party 2", "Party 3", "Party 4"]
    bad = await refused(list_parties(world.uow, 2, "not-a-token!"))
    assert bad.reason == "PAGE_TOKEN_INVALID"


async def test_a_suspended_party_is_refused_within_the_cache_ttl_until_resumed(
    world: World,
) -> None:
    created = await _created(world)
    party_id, key = created.record.party.id, created.api_key
    await authenticate_party(world.uow, world.ctx, key)

    change = await suspend_party(world.uow, world.ctx, party_id)
    assert change.changed and change.record.party.status is PartyStatus.SUSPENDED
    assert change.record.suspended_at == world.clock()
    # Cached: still served until the entry lapses (at most TTL_SECONDS).
    assert (await authenticate_party(world.uow, world.ctx, key)).id == party_id
    assert await _authenticated(world, key) == "PARTY_SUSPENDED"
    denied = await refused(authenticate_party(world.uow, world.ctx, key))
    assert isinstance(denied, PermissionDenied)

    resumed = await resume_party(world.uow, world.ctx, party_id)
    assert resumed.changed and resumed.record.party.status is PartyStatus.ACTIVE
    assert resumed.record.suspended_at is None
    assert await _authenticated(world, key) == party_id


async def test_suspending_twice_or_resuming_an_active_party_changes_nothing(
    world: World,
) -> None:
    party_id = (await _created(world)).record.party.id
    first = await suspend_party(world.uow, world.ctx, party_id)
    world.clock.advance(timedelta(minutes=5))
    again = await suspend_party(world.uow, world.ctx, party_id)
    assert not again.changed
    assert again.record.suspended_at == first.record.suspended_at  # the first suspension's time
    await resume_party(world.uow, world.ctx, party_id)
    assert not (await resume_party(world.uow, world.ctx, party_id)).changed
    assert (await show_party(world.uow, party_id)).party.status is PartyStatus.ACTIVE


async def test_set_scopes_grants_or_takes_away_what_the_party_reads(world: World) -> None:
    created = await _created(world)
    party_id = created.record.party.id
    contact = frozenset({Attribute.PHONE_NUMBER, Attribute.EMAIL})

    changed = await set_party_scopes(world.uow, party_id, BASIC | contact)

    assert changed.party.scopes == BASIC | contact
    assert (await show_party(world.uow, party_id)).party.scopes == BASIC | contact
    world.clock.advance(PAST_TTL)  # servers see it once their cached copy lapses
    assert (await authenticate_party(world.uow, world.ctx, created.api_key)).scopes == (
        BASIC | contact
    )
    await set_party_scopes(world.uow, party_id, contact)
    assert (await show_party(world.uow, party_id)).party.scopes == contact
    empty = await refused(set_party_scopes(world.uow, party_id, frozenset()))
    assert (empty.reason, world.uow.state.parties[party_id].party.scopes) == (
        "SCOPES_EMPTY",
        contact,
    )
    missing = await refused(set_party_scopes(world.uow, "rp_nobody", BASIC))
    assert missing.reason == "PARTY_NOT_FOUND"


async def test_a_deleted_party_is_gone_but_its_row_stays(world: World) -> None:
    created = await _created(world)
    party_id = created.record.party.id
    gone = await delete_party(world.uow, world.ctx, party_id)
    assert gone.party.id == party_id
    assert await _authenticated(world, created.api_key) == "API_KEY_INVALID"
    assert (await refused(show_party(world.uow, party_id))).reason == "PARTY_NOT_FOUND"
    again = await refused(delete_party(world.uow, world.ctx, party_id))
    assert again.reason == "PARTY_NOT_FOUND"
    assert world.uow.state.parties[party_id].disabled_at is not None  # audit still names it


async def test_a_rotated_key_overlaps_with_the_old_one_then_replaces_it(world: World) -> None:
    created = await _created(world)
    party_id, old = created.record.party.id, created.api_key
    rotated = await rotate_party_key(world.uow, world.ctx, party_id, timedelta(hours=1))
    assert rotated.api_key != old and not rotated.cut_short
    assert rotated.old_key_expires_at == world.clock() + timedelta(hours=1)
    shown = await show_party(world.uow, party_id)
    assert shown.previous_key_expires_at == rotated.old_key_expires_at

    assert await _authenticated(world, old) == party_id
    assert await _authenticated(world, rotated.api_key) == party_id
    world.clock.advance(timedelta(hours=1))
    assert await _authenticated(world, old) == "API_KEY_INVALID"
    assert await _authenticated(world, rotated.api_key) == party_id


async def test_a_second_rotation_inside_the_overlap_stops_the_first_old_key(
    world: World,
) -> None:
    created = await _created(world)
    party_id, first = created.record.party.id, created.api_key
    second = await rotate_party_key(world.uow, world.ctx, party_id)  # 24 h by default
    # Forced: a second rotation this soon is refused otherwise (see below).
    third = await rotate_party_key(
        world.uow, world.ctx, party_id, timedelta(minutes=30), force=True
    )
    assert third.cut_short
    assert await _authenticated(world, first) == "API_KEY_INVALID"
    assert await _authenticated(world, second.api_key) == party_id
    assert await _authenticated(world, third.api_key) == party_id


async def test_a_key_a_rotation_made_minutes_ago_is_not_rotated_again_unless_forced(
    world: World,
) -> None:
    """Two operators rotating a leaked key seconds apart: the second rotation
    stopped the key the first had just handed to the party, and said only
    that the old key stops now. It is refused, and changes nothing."""
    created = await _created(world)
    party_id = created.record.party.id
    first = await rotate_party_key(world.uow, world.ctx, party_id, timedelta(hours=1))
    world.clock.advance(timedelta(seconds=42))
    writes = world.uow.writes
    before = await show_party(world.uow, party_id)
    assert before.key_rotated_at == world.clock() - timedelta(seconds=42)

    again = await refused(rotate_party_key(world.uow, world.ctx, party_id, timedelta(0)))
    assert isinstance(again, PreconditionFailed) and again.reason == "KEY_RECENTLY_ROTATED"
    assert again.metadata == {"rotated_seconds_ago": "42"}
    assert "42 s ago" in again.message and "--force" in again.message
    assert "another operator" in again.message and party_id in again.message
    assert first.api_key not in again.message
    # Nothing written: the first rotation's key works, the earlier one keeps its hour.
    assert world.uow.writes == writes + 1  # the attempt, whose transaction wrote nothing
    assert await show_party(world.uow, party_id) == before
    assert before.previous_key_expires_at == first.old_key_expires_at
    assert await _authenticated(world, first.api_key) == party_id
    assert await _authenticated(world, created.api_key) == party_id  # within its hour

    world.clock.advance(timedelta(minutes=3))  # and two PAST_TTLs above: 4 min 4 s
    later = await refused(rotate_party_key(world.uow, world.ctx, party_id, timedelta(0)))
    assert later.reason == "KEY_RECENTLY_ROTATED" and "4 min ago" in later.message
    assert later.metadata == {"rotated_seconds_ago": str(42 + 2 * PAST_TTL.seconds + 180)}


async def test_force_rotates_a_key_a_rotation_made_moments_ago(world: World) -> None:
    created = await _created(world)
    party_id = created.record.party.id
    first = await rotate_party_key(world.uow, world.ctx, party_id, timedelta(0))
    forced = await rotate_party_key(world.uow, world.ctx, party_id, timedelta(0), force=True)
    assert forced.api_key not in (first.api_key, created.api_key)
    assert (await show_party(world.uow, party_id)).key_rotated_at == world.clock()
    assert await _authenticated(world, forced.api_key) == party_id
    assert await _authenticated(world, first.api_key) == "API_KEY_INVALID"  # it stopped too


async def test_a_key_rotated_10_minutes_ago_or_made_at_creation_rotates_without_force(
    world: World,
) -> None:
    created = await _created(world)
    party_id = created.record.party.id
    assert created.record.key_rotated_at is None
    # A key made when the party was created is never recent: create, then rotate.
    first = await rotate_party_key(world.uow, world.ctx, party_id, timedelta(0))
    world.clock.advance(RECENT_KEY_ROTATION - timedelta(seconds=1))
    almost = await refused(rotate_party_key(world.uow, world.ctx, party_id, timedelta(0)))
    assert almost.reason == "KEY_RECENTLY_ROTATED" and "9 min ago" in almost.message
    world.clock.advance(timedelta(seconds=1))
    second = await rotate_party_key(world.uow, world.ctx, party_id, timedelta(0))
    assert await _authenticated(world, second.api_key) == party_id
    assert await _authenticated(world, first.api_key) == "API_KEY_INVALID"


async def test_an_overlap_of_0_stops_the_old_key_at_once_and_31_days_is_refused(
    world: World,
) -> None:
    created = await _created(world)
    party_id = created.record.party.id
    rotated = await rotate_party_key(world.uow, world.ctx, party_id, timedelta(0))
    assert await _authenticated(world, created.api_key) == "API_KEY_INVALID"
    assert await _authenticated(world, rotated.api_key) == party_id
    too_long = await refused(rotate_party_key(world.uow, world.ctx, party_id, timedelta(days=31)))
    assert isinstance(too_long, InvalidInput) and too_long.reason == "KEY_OVERLAP_INVALID"


async def test_a_suspended_party_can_rotate_its_key_and_stays_suspended(world: World) -> None:
    created = await _created(world)
    party_id = created.record.party.id
    await suspend_party(world.uow, world.ctx, party_id)
    rotated = await rotate_party_key(world.uow, world.ctx, party_id)
    assert await _authenticated(world, rotated.api_key) == "PARTY_SUSPENDED"
    assert await _authenticated(world, created.api_key) == "PARTY_SUSPENDED"
