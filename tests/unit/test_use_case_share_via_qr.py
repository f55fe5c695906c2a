"""ShareViaQR: a signed share of chosen attributes, for a signed-in citizen only."""

from __future__ import annotations

from datetime import timedelta

from eid_service.domain.account import AccountState
from eid_service.domain.errors import InvalidInput, NotFound, Unauthenticated
from eid_service.domain.share import DEFAULT_SHARE_TTL, MAX_SHARE_TTL, Attribute
from eid_service.use_cases.sessions import ACCESS_TTL
from tests.unit.use_case_kit import LAN, World, refused

A = Attribute


async def _session(world: World) -> str:
    await world.active(LAN)
    return (await world.sign_in(LAN)).tokens.access_token


async def test_a_share_is_signed_stored_and_expires_by_default_in_five_minutes(
    world: World,
) -> None:
    session = await _session(world)
    account = world.uow.run_now(lambda r: r.accounts.find_by_personal_id(LAN.personal_id))
    assert account is not None

    issued = await world.share(session, [A.FULL_NAME, A.BIRTH_DATE, A.FULL_NAME])

    claims = (await world.keys()).read(issued.token)
    grant = issued.grant
    assert claims.share_id == grant.id and claims.audience is None
    assert claims.expires_at == grant.expires_at == world.clock() + DEFAULT_SHARE_TTL
    assert grant.account_id == account.id
    assert grant.attributes == {A.FULL_NAME, A.BIRTH_DATE}
    assert world.uow.state.shares[grant.id] == grant


async def test_a_share_can_be_bound_to_a_party_for_a_chosen_time(world: World) -> None:
    session = await _session(world)
    bank = world.party()

    issued = await world.share(session, [A.FULL_NAME], audience=bank.id, ttl=MAX_SHARE_TTL)

    claims = (await world.keys()).read(issued.token)
    assert claims.audience == issued.grant.audience_party_id == bank.id
    assert claims.expires_at == world.clock() + MAX_SHARE_TTL


async def test_without_a_live_session_nothing_is_shared(world: World) -> None:
    session = await _session(world)

    missing = await refused(world.share(None, [A.FULL_NAME]))
    forged = await refused(world.share("eids_forged", [A.FULL_NAME]))
    world.clock.advance(ACCESS_TTL)
    expired = await refused(world.share(session, [A.FULL_NAME]))

    assert isinstance(missing, Unauthenticated) and missing.reason == "SESSION_MISSING"
    assert isinstance(forged, Unauthenticated) and forged.reason == "SESSION_INVALID"
    assert isinstance(expired, Unauthenticated) and expired.reason == "SESSION_INVALID"
    assert world.uow.state.shares == {}


async def test_a_locked_citizen_cannot_share(world: World) -> None:
    session = await _session(world)
    world.set_state(LAN, AccountState.LOCKED)
    error = await refused(world.share(session, [A.FULL_NAME]))
    assert error.reason == "ACCOUNT_LOCKED"
    assert world.uow.state.shares == {}


async def test_bad_lifetimes_and_attribute_lists_are_refused_before_any_transaction(
    world: World,
) -> None:
    session = await _session(world)
    before = world.uow.transactions

    short = await refused(world.share(session, [A.FULL_NAME], ttl=timedelta(seconds=29)))
    long = await refused(world.share(session, [A.FULL_NAME], ttl=MAX_SHARE_TTL + timedelta(1)))
    empty = await refused(world.share(session, []))
    unspecified = await refused(world.share(session, [A.FULL_NAME, None]))
    both = await refused(world.share(session, [], ttl=timedelta(0)))

    assert isinstance(short, InvalidInput) and short.reason == "SHARE_TTL_OUT_OF_RANGE"
    assert long.reason == "SHARE_TTL_OUT_OF_RANGE"
    assert empty.reason == "SHARE_ATTRIBUTES_EMPTY"
    assert unspecified.reason == "ATTRIBUTE_UNSPECIFIED"
    assert isinstance(both, InvalidInput) and both.reason == "INVALID_FIELDS"
    assert {v.field for v in both.violations} == {"attributes", "ttl"}
    assert world.uow.transactions == before


async def test_an_unknown_or_disabled_audience_is_refused(world: World) -> None:
    session = await _session(world)
    bank = world.party()
    world.uow.state.parties[bank.id].disabled_at = world.clock()

    for audience in ("rp_nobody", bank.id):
        error = await refused(world.share(session, [A.FULL_NAME], audience=audience))
        assert isinstance(error, NotFound) and error.reason == "AUDIENCE_PARTY_NOT_FOUND"
    assert world.uow.state.shares == {}


async def test_a_retry_with_the_same_request_id_gets_the_same_share(world: World) -> None:
    session = await _session(world)
    first = await world.share(session, [A.FULL_NAME], request_id="share-1")
    world.clock.advance(timedelta(seconds=3))

    again = await world.share(session, [A.FULL_NAME], request_id="share-1")

    assert again == first
    assert list(world.uow.state.shares) == [first.grant.id]


async def test_a_request_id_reused_for_other_attributes_is_refused(world: World) -> None:
    session = await _session(world)
    await world.share(session, [A.FULL_NAME], request_id="share-1")
    error = await refused(world.share(session, [A.BIRTH_DATE], request_id="share-1"))
    assert error.reason == "REQUEST_ID_REUSED"
    assert len(world.uow.state.shares) == 1


async def test_request_ids_are_scoped_to_the_session(world: World) -> None:
    session = await _session(world)
    other_session = (await world.sign_in(LAN)).tokens.access_token
    first = await world.share(session, [A.FULL_NAME], request_id="share-1")
    second = await world.share(other_session, [A.FULL_NAME], request_id="share-1")
    assert first.grant.id != second.grant.id
    assert len(world.uow.state.shares) == 2


async def test_a_retry_after_the_token_was_refreshed_is_the_same_share(world: World) -> None:
    """Request ids are the session's, not the access token's: the app that
    lost an answer and refreshed its expired token before retrying gets the
    share it was given, not a second one (found by an attacker's pass)."""
    await world.active(LAN)
    tokens = (await world.sign_in(LAN)).tokens
    first = await world.share(tokens.access_token, [Attribute.GENDER], request_id="share-1")

    refreshed = await world.refresh(tokens.refresh_token)
    again = await world.share(refreshed.access_token, [Attribute.GENDER], request_id="share-1")

    assert again.grant.id == first.grant.id
    assert len(world.uow.state.shares) == 1
    # A copy still carrying the token it was sent with (refreshed since: a
    # duplicate in flight) gets it too (found in review).
    old = await world.share(tokens.access_token, [Attribute.GENDER], request_id="share-1")
    assert old.grant.id == first.grant.id
    # Another session's request id of the same name is another request.
    other = (await world.sign_in(LAN)).tokens.access_token
    assert (await world.share(other, [Attribute.GENDER], request_id="share-1")).grant.id != (
        first.grant.id
    )
