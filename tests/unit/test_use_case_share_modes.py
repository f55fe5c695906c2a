"""ShareViaQR's modes and uses, and the citizen's list and revocation of shares."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from eid_client.offline import verify_offline
from eid_service.domain.account import AccountState
from eid_service.domain.errors import InvalidInput, NotFound, PreconditionFailed
from eid_service.domain.share import Attribute, ShareMode, SharePolicy
from eid_service.domain.share_grant import ShareState
from tests.unit.use_case_kit import LAN, MINH, World, refused

A = Attribute
BASIC: list[Attribute | None] = [A.PERSONAL_ID, A.FULL_NAME, A.BIRTH_DATE, A.GENDER]


async def _session(world: World, citizen: object = LAN) -> str:
    await world.active(citizen)  # type: ignore[arg-type]
    return (await world.sign_in(citizen)).tokens.access_token  # type: ignore[arg-type]


async def test_an_offline_share_carries_exactly_the_chosen_attributes(world: World) -> None:
    session = await _session(world)
    issued = await world.share(session, [A.FULL_NAME, A.BIRTH_DATE], mode=ShareMode.OFFLINE)
    keys = await world.keys()

    credential = verify_offline(issued.token, keys.verification_keys, now=world.clock())

    assert credential.full_name == LAN.demographics.full_name
    assert credential.birth_date == LAN.demographics.birth_date.isoformat()
    assert credential.personal_id is None and credential.gender is None
    assert credential.share_id == issued.grant.id
    assert credential.issuer == SharePolicy().issuer
    assert credential.key_id == keys.current_key_id == issued.key_id
    assert credential.expires_at == issued.grant.expires_at
    assert issued.grant.mode is ShareMode.OFFLINE
    assert world.uow.state.shares[issued.grant.id].mode is ShareMode.OFFLINE


async def test_an_offline_share_redeems_online_once(world: World) -> None:
    await world.active(LAN)
    bank = world.party()
    issued = await world.shared_by(LAN, BASIC, mode=ShareMode.OFFLINE)

    first = await world.redeem(bank, issued.token)
    again = await refused(world.redeem(bank, issued.token))

    assert first.verified and first.released[A.PERSONAL_ID] == LAN.personal_id
    assert isinstance(again, PreconditionFailed) and again.reason == "SHARE_ALREADY_REDEEMED"


async def test_a_multi_use_share_redeems_until_it_expires(world: World) -> None:
    await world.active(LAN)
    bank, telco = world.party("Bank"), world.party("Telco")
    issued = await world.shared_by(LAN, [A.FULL_NAME], multi_use=True)

    results = [await world.redeem(p, issued.token) for p in (bank, telco, bank)]
    world.clock.advance(timedelta(minutes=5))
    expired = await refused(world.redeem(bank, issued.token))

    assert all(r.verified for r in results)
    grant = world.uow.state.shares[issued.grant.id]
    assert grant.redeem_count == 3 and grant.last_redeemed_at is not None
    assert grant.state(world.clock() - timedelta(seconds=1)) is ShareState.ACTIVE
    assert expired.reason == "SHARE_EXPIRED"


async def test_a_revoked_share_fails_at_once_and_says_so(world: World) -> None:
    session = await _session(world)
    bank = world.party()
    issued = await world.share(session, [A.FULL_NAME], multi_use=True)
    assert (await world.redeem(bank, issued.token)).verified

    revoked = await world.revoke_share(session, issued.grant.id)
    error = await refused(world.redeem(bank, issued.token))

    assert revoked.state(world.clock()) is ShareState.REVOKED
    assert isinstance(error, PreconditionFailed) and error.reason == "SHARE_REVOKED"
    assert ("verify.qr_share", "share_revoked", bank.id) in world.history(LAN)
    # Revoking again answers the share as it is.
    assert (await world.revoke_share(session, issued.grant.id)).revoked_at == revoked.revoked_at


async def test_revoking_a_spent_or_expired_share_answers_it_as_it_is(world: World) -> None:
    """Its history stays true: a share used up or expired is not relabelled revoked."""
    session = await _session(world)
    bank = world.party()
    spent = await world.share(session, [A.FULL_NAME])
    assert (await world.redeem(bank, spent.token)).verified
    lapsing = await world.share(session, [A.FULL_NAME])
    world.clock.advance(timedelta(minutes=6))

    for issued, state in ((spent, ShareState.REDEEMED), (lapsing, ShareState.EXPIRED)):
        answer = await world.revoke_share(session, issued.grant.id)
        assert (answer.state(world.clock()), answer.revoked_at) == (state, None)


async def test_a_share_withdrawn_by_a_lock_says_the_account_is_locked(world: World) -> None:
    await world.active(LAN)
    bank = world.party()
    issued = await world.shared_by(LAN, [A.FULL_NAME])
    world.uow.run_now(lambda r: r.shares.revoke_all(issued.grant.account_id, world.clock()))
    world.set_state(LAN, AccountState.LOCKED)

    error = await refused(world.redeem(bank, issued.token))

    assert error.reason == "ACCOUNT_LOCKED"


async def test_nobody_revokes_or_lists_another_citizens_shares(world: World) -> None:
    lan = await _session(world, LAN)
    minh = await _session(world, MINH)
    issued = await world.share(lan, [A.FULL_NAME])

    stranger = await refused(world.revoke_share(minh, issued.grant.id))
    bad_id = await refused(world.revoke_share(minh, "shr_../../x"))

    assert isinstance(stranger, NotFound) and stranger.reason == "SHARE_NOT_FOUND"
    assert isinstance(bad_id, InvalidInput) and bad_id.reason == "SHARE_ID_INVALID"
    assert (await world.shares(minh)).shares == []
    assert world.uow.state.shares[issued.grant.id].revoked_at is None


async def test_shares_are_listed_newest_first_in_pages(world: World) -> None:
    session = await _session(world)
    made = []
    for _ in range(5):
        made.append((await world.share(session, [A.FULL_NAME])).grant.id)
        world.clock.advance(timedelta(seconds=1))

    first = await world.shares(session, page_size=2)
    second = await world.shares(session, page_size=2, page_token=first.next_page_token)
    last = await world.shares(session, page_size=2, page_token=second.next_page_token)
    bad = await refused(world.shares(session, page_token="bm90LWEtc2hhcmU="))

    listed = [g.id for page in (first, second, last) for g in page.shares]
    assert listed == made[::-1]
    assert last.next_page_token == ""
    assert bad.reason == "PAGE_TOKEN_INVALID"


async def test_the_configured_cap_bounds_the_lifetime(world: World) -> None:
    session = await _session(world)
    world.ctx = replace(world.ctx, share_policy=SharePolicy(max_ttl=timedelta(minutes=2)))

    too_long = await refused(world.share(session, [A.FULL_NAME], ttl=timedelta(minutes=3)))
    default = await world.share(session, [A.FULL_NAME])

    assert too_long.reason == "SHARE_TTL_OUT_OF_RANGE" and "2 minutes" in too_long.message
    assert default.grant.expires_at - default.grant.created_at == timedelta(minutes=2)
