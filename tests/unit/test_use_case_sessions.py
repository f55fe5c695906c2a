"""Sessions: rotating single-use refresh tokens, sign out, list and revoke devices."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest

from eid_service.domain.account import AccountState
from eid_service.domain.errors import InvalidInput, NotFound, Unauthenticated
from eid_service.domain.share import Attribute
from eid_service.use_cases.pages import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from eid_service.use_cases.sessions import ACCESS_TTL, LIFETIMES, REFRESH_TTL
from eid_service.use_cases.sign_in import SignedIn
from tests.unit.use_case_kit import LAN, MINH, World, refused

A = Attribute


async def _signed_in(world: World, device_name: str = "") -> SignedIn:
    if world.uow.run_now(lambda r: r.accounts.find_by_personal_id(LAN.personal_id)) is None:
        await world.active(LAN)
    return await world.sign_in(LAN, device_name=device_name)


# ---- RefreshSession ---------------------------------------------------------


async def test_a_refresh_gives_a_new_pair_for_the_same_session(world: World) -> None:
    first = (await _signed_in(world)).tokens
    world.clock.advance(timedelta(minutes=14))

    second = await world.refresh(first.refresh_token)

    assert second.session_id == first.session_id
    assert second.access_token != first.access_token
    assert second.refresh_token != first.refresh_token
    assert second.access_expires_at == world.clock() + ACCESS_TTL
    assert second.refresh_expires_at == world.clock() + REFRESH_TTL
    # The new access token works, the old one no longer does.
    page = await world.sessions(second.access_token)
    assert page.current_session_id == first.session_id
    assert page.sessions[0].last_used_at == world.clock()
    error = await refused(world.sessions(first.access_token))
    assert error.reason == "SESSION_INVALID"


async def test_an_expired_access_token_is_refreshed_within_thirty_days(world: World) -> None:
    tokens = (await _signed_in(world)).tokens
    world.clock.advance(ACCESS_TTL)
    error = await refused(world.sessions(tokens.access_token))
    assert isinstance(error, Unauthenticated) and error.reason == "SESSION_INVALID"

    world.clock.advance(REFRESH_TTL - ACCESS_TTL - timedelta(seconds=1))
    renewed = await world.refresh(tokens.refresh_token)
    assert (await world.sessions(renewed.access_token)).sessions


async def test_a_refresh_token_past_thirty_days_is_refused(world: World) -> None:
    tokens = (await _signed_in(world)).tokens
    world.clock.advance(REFRESH_TTL)
    error = await refused(world.refresh(tokens.refresh_token))
    assert isinstance(error, Unauthenticated) and error.reason == "REFRESH_TOKEN_INVALID"


async def test_a_spent_refresh_token_ends_the_session_for_both_holders(world: World) -> None:
    """A thief and the citizen both hold the token; whoever comes second ends it."""
    tokens = (await _signed_in(world)).tokens
    thiefs = await world.refresh(tokens.refresh_token)

    error = await refused(world.refresh(tokens.refresh_token))

    assert isinstance(error, Unauthenticated) and error.reason == "REFRESH_TOKEN_REUSED"
    assert world.revoked_reason(tokens.session_id) == "refresh_reused"
    assert (await refused(world.sessions(thiefs.access_token))).reason == "SESSION_INVALID"
    assert (await refused(world.refresh(thiefs.refresh_token))).reason == "REFRESH_TOKEN_INVALID"
    assert world.history(LAN)[-1] == ("session_refresh", "token_reused", None)


async def test_a_reused_token_ends_only_its_own_session(world: World) -> None:
    phone = await _signed_in(world)
    laptop = await _signed_in(world)
    await world.refresh(phone.tokens.refresh_token)
    await refused(world.refresh(phone.tokens.refresh_token))

    page = await world.sessions(laptop.tokens.access_token)
    assert [s.id for s in page.sessions] == [laptop.tokens.session_id]


async def test_a_retry_with_the_same_request_id_gets_the_same_new_pair(world: World) -> None:
    """A client that lost the answer to a refresh is not taken for a thief."""
    tokens = (await _signed_in(world)).tokens
    first = await world.refresh(tokens.refresh_token, request_id="refresh-1")
    again = await world.refresh(tokens.refresh_token, request_id="refresh-1")

    assert again == first
    assert world.revoked_reason(tokens.session_id) is None
    newer = await world.refresh(first.refresh_token)
    assert newer.session_id == tokens.session_id
    assert ("session_refresh", "token_reused", None) not in world.history(LAN)


async def test_a_copy_of_a_refresh_the_client_moved_past_ends_the_session(world: World) -> None:
    """Whoever holds the whole request (refresh token and request id) of a
    refresh its client has since refreshed past is not its client. Before,
    it got the answer's tokens again for 24 hours (found by an attacker's
    pass); now it is a spent token's reuse, told so every time."""
    tokens = (await _signed_in(world)).tokens
    first = await world.refresh(tokens.refresh_token, request_id="refresh-1")
    world.clock.advance(timedelta(minutes=20))
    second = await world.refresh(first.refresh_token, request_id="refresh-2")

    copy = await refused(world.refresh(tokens.refresh_token, request_id="refresh-1"))

    assert copy.reason == "REFRESH_TOKEN_REUSED"
    assert world.revoked_reason(tokens.session_id) == "refresh_reused"
    assert (await refused(world.sign_out(second.access_token))).reason == "SESSION_INVALID"
    again = await refused(world.refresh(tokens.refresh_token, request_id="refresh-1"))
    assert again.reason == "REFRESH_TOKEN_REUSED"


async def test_a_retry_after_the_session_ended_is_told_the_token_is_invalid(
    world: World,
) -> None:
    """Not a reuse: no theft is recorded for a session that ended anyway
    (found in review)."""
    tokens = (await _signed_in(world)).tokens
    first = await world.refresh(tokens.refresh_token, request_id="refresh-1")
    await world.sign_out(first.access_token)

    retry = await refused(world.refresh(tokens.refresh_token, request_id="refresh-1"))

    assert retry.reason == "REFRESH_TOKEN_INVALID"
    assert ("session_refresh", "token_reused", None) not in world.history(LAN)
    assert world.revoked_reason(tokens.session_id) == "signed_out"


async def test_the_spent_token_under_a_new_request_id_is_still_a_reuse(world: World) -> None:
    tokens = (await _signed_in(world)).tokens
    await world.refresh(tokens.refresh_token, request_id="refresh-1")
    error = await refused(world.refresh(tokens.refresh_token, request_id="refresh-2"))
    assert error.reason == "REFRESH_TOKEN_REUSED"
    assert world.revoked_reason(tokens.session_id) == "refresh_reused"


async def test_unknown_missing_and_signed_out_refresh_tokens_are_refused(world: World) -> None:
    tokens = (await _signed_in(world)).tokens
    missing = await refused(world.refresh(""))
    assert isinstance(missing, InvalidInput) and missing.reason == "REFRESH_TOKEN_MISSING"
    unknown = await refused(world.refresh("eidr_" + "x" * 40))
    assert unknown.reason == "REFRESH_TOKEN_INVALID"

    await world.sign_out(tokens.access_token)
    after_sign_out = await refused(world.refresh(tokens.refresh_token))
    assert after_sign_out.reason == "REFRESH_TOKEN_INVALID"


async def test_a_session_of_an_account_locked_by_an_operator_cannot_be_refreshed(
    world: World,
) -> None:
    tokens = (await _signed_in(world)).tokens
    world.set_state(LAN, AccountState.LOCKED)

    error = await refused(world.refresh(tokens.refresh_token))

    assert error.reason == "ACCOUNT_LOCKED"
    # Refused as a whole: the token was not spent.
    world.set_state(LAN, AccountState.ACTIVE)
    assert (await world.refresh(tokens.refresh_token)).session_id == tokens.session_id


# ---- SignOut ----------------------------------------------------------------


async def test_signing_out_ends_only_this_session(world: World) -> None:
    phone = await _signed_in(world)
    laptop = await _signed_in(world)

    await world.sign_out(phone.tokens.access_token)

    assert world.revoked_reason(phone.tokens.session_id) == "signed_out"
    assert (await refused(world.sessions(phone.tokens.access_token))).reason == "SESSION_INVALID"
    page = await world.sessions(laptop.tokens.access_token)
    assert [s.id for s in page.sessions] == [laptop.tokens.session_id]
    assert world.history(LAN)[-1] == ("sign_out", "ok", None)


async def test_a_retried_sign_out_gets_the_same_answer(world: World) -> None:
    tokens = (await _signed_in(world)).tokens
    await world.sign_out(tokens.access_token, request_id="bye-1")
    await world.sign_out(tokens.access_token, request_id="bye-1")
    assert [e for e in world.history(LAN) if e[0] == "sign_out"] == [("sign_out", "ok", None)]

    error = await refused(world.sign_out(tokens.access_token, request_id="bye-2"))
    assert error.reason == "SESSION_INVALID"


async def test_sign_out_without_a_session_is_refused(world: World) -> None:
    error = await refused(world.sign_out(None))
    assert isinstance(error, Unauthenticated) and error.reason == "SESSION_MISSING"
    assert world.uow.transactions == 0


# ---- ListSessions -----------------------------------------------------------


async def test_sessions_are_listed_newest_first_with_the_current_one_named(
    world: World,
) -> None:
    opened = []
    for device in ("Pixel 8", "  Firefox \t on   Linux ", ""):
        opened.append(await _signed_in(world, device))
        world.clock.advance(timedelta(minutes=1))

    page = await world.sessions(opened[1].tokens.access_token)

    assert [s.id for s in page.sessions] == [o.tokens.session_id for o in reversed(opened)]
    assert [s.device for s in page.sessions] == ["", "Firefox on Linux", "Pixel 8"]
    assert page.current_session_id == opened[1].tokens.session_id
    assert page.next_page_token == ""
    oldest = page.sessions[-1]
    assert oldest.expires_at == oldest.created_at + REFRESH_TTL


async def test_a_device_name_that_is_too_long_or_unprintable_is_refused(world: World) -> None:
    await world.active(LAN)
    before = world.uow.transactions
    for name in ("x" * 65, "Pixel\x008"):
        error = await refused(world.sign_in(LAN, device_name=name))
        assert isinstance(error, InvalidInput) and error.reason == "DEVICE_NAME_INVALID"
    assert world.uow.transactions == before
    assert (await world.sign_in(LAN, device_name="y" * 64)).tokens.session_id


async def test_pages_walk_every_session_once(world: World) -> None:
    opened = []
    for _ in range(5):
        opened.append(await _signed_in(world))
    token = opened[0].tokens.access_token

    seen: list[str] = []
    page = await world.sessions(token, page_size=2)
    pages = 1
    seen += [s.id for s in page.sessions]
    while page.next_page_token:
        page = await world.sessions(token, page_size=2, page_token=page.next_page_token)
        seen += [s.id for s in page.sessions]
        pages += 1

    # All opened in the same instant: the order is by id, still stable and complete.
    assert pages == 3
    assert sorted(seen) == sorted(o.tokens.session_id for o in opened)
    assert len(set(seen)) == 5


async def test_a_page_never_holds_more_than_the_maximum(world: World) -> None:
    current = (await _signed_in(world)).tokens
    account_id = current.account_id
    world.uow.run_now(
        lambda r: [
            r.sessions.open(account_id, "", world.clock(), LIFETIMES) for _ in range(MAX_PAGE_SIZE)
        ]
    )

    page = await world.sessions(current.access_token, page_size=MAX_PAGE_SIZE + 50)
    assert len(page.sessions) == MAX_PAGE_SIZE
    assert page.next_page_token
    rest = await world.sessions(current.access_token, 0, page.next_page_token)
    assert len(rest.sessions) == 1 and rest.next_page_token == ""
    default = await world.sessions(current.access_token)
    assert len(default.sessions) == DEFAULT_PAGE_SIZE


async def test_signed_out_revoked_and_expired_sessions_are_not_listed(world: World) -> None:
    old = await _signed_in(world)
    world.clock.advance(REFRESH_TTL - timedelta(days=1))
    signed_out = await _signed_in(world)
    revoked = await _signed_in(world)
    current = await _signed_in(world)
    await world.sign_out(signed_out.tokens.access_token)
    await world.revoke_session(current.tokens.access_token, revoked.tokens.session_id)

    world.clock.advance(timedelta(days=1))
    renewed = await world.refresh(current.tokens.refresh_token)

    page = await world.sessions(renewed.access_token)
    assert [s.id for s in page.sessions] == [current.tokens.session_id]
    assert world.revoked_reason(old.tokens.session_id) is None  # expired, never revoked


@pytest.mark.parametrize(
    "page_token",
    [
        "not base64!",
        base64.urlsafe_b64encode(b"acc_0123456789abcdef01234567").decode(),
        base64.urlsafe_b64encode(b"ses_0123").decode(),
        "ümlaut",
    ],
)
async def test_a_page_token_not_from_an_earlier_page_is_refused(
    world: World, page_token: str
) -> None:
    tokens = (await _signed_in(world)).tokens
    before = world.uow.transactions
    error = await refused(world.sessions(tokens.access_token, page_token=page_token))
    assert isinstance(error, InvalidInput) and error.reason == "PAGE_TOKEN_INVALID"
    assert world.uow.transactions == before


async def test_a_page_token_naming_no_session_does_not_start_the_list_again(
    world: World,
) -> None:
    """As the store does: the position is gone (the session was purged), so
    nothing comes after it."""
    tokens = (await _signed_in(world)).tokens
    gone = base64.urlsafe_b64encode(b"ses_" + b"0" * 24).decode()
    page = await world.sessions(tokens.access_token, page_token=gone)
    assert (page.sessions, page.next_page_token) == ([], "")


async def test_a_negative_page_size_is_refused(world: World) -> None:
    tokens = (await _signed_in(world)).tokens
    error = await refused(world.sessions(tokens.access_token, page_size=-1))
    assert isinstance(error, InvalidInput) and error.reason == "PAGE_SIZE_NEGATIVE"


async def test_listing_needs_a_live_session_and_shows_only_ones_own(world: World) -> None:
    mine = await _signed_in(world)
    await world.active(MINH)
    theirs = await world.sign_in(MINH)

    page = await world.sessions(theirs.tokens.access_token)
    assert [s.id for s in page.sessions] == [theirs.tokens.session_id]
    assert mine.tokens.session_id not in [s.id for s in page.sessions]

    missing = await refused(world.sessions(None))
    assert missing.reason == "SESSION_MISSING"
    forged = await refused(world.sessions("eids_" + "x" * 40))
    assert forged.reason == "SESSION_INVALID"


async def test_listing_changes_nothing(world: World) -> None:
    tokens = (await _signed_in(world)).tokens
    writes = world.uow.writes
    await world.sessions(tokens.access_token)
    assert world.uow.writes == writes


# ---- RevokeSession ----------------------------------------------------------


async def test_revoking_another_device_ends_it_and_its_shares_keep_working(
    world: World,
) -> None:
    phone = await _signed_in(world)
    stolen = await _signed_in(world)

    await world.revoke_session(phone.tokens.access_token, stolen.tokens.session_id)

    assert world.revoked_reason(stolen.tokens.session_id) == "revoked"
    assert (await refused(world.sessions(stolen.tokens.access_token))).reason == "SESSION_INVALID"
    assert (await refused(world.refresh(stolen.tokens.refresh_token))).reason == (
        "REFRESH_TOKEN_INVALID"
    )
    assert (await world.sessions(phone.tokens.access_token)).sessions[0].id == (
        phone.tokens.session_id
    )
    assert world.history(LAN)[-1] == ("revoke_session", "ok", None)


async def test_a_citizen_may_revoke_the_session_in_use(world: World) -> None:
    tokens = (await _signed_in(world)).tokens
    await world.revoke_session(tokens.access_token, tokens.session_id)
    assert (await refused(world.sessions(tokens.access_token))).reason == "SESSION_INVALID"


async def test_another_citizens_session_is_not_found_and_stays_live(world: World) -> None:
    lan = await _signed_in(world)
    await world.active(MINH)
    minh = await world.sign_in(MINH)

    error = await refused(world.revoke_session(lan.tokens.access_token, minh.tokens.session_id))
    unknown = await refused(world.revoke_session(lan.tokens.access_token, "ses_" + "0" * 24))

    assert isinstance(error, NotFound) and error.reason == "SESSION_NOT_FOUND"
    assert (unknown.reason, unknown.message) == (error.reason, error.message)
    assert world.revoked_reason(minh.tokens.session_id) is None
    assert (await world.sessions(minh.tokens.access_token)).sessions
    assert ("revoke_session", "ok", None) not in world.history(LAN)
    assert ("revoke_session", "ok", None) not in world.history(MINH)


async def test_revoking_twice_is_not_found_unless_it_is_a_retry(world: World) -> None:
    phone = await _signed_in(world)
    laptop = await _signed_in(world)
    token, other = phone.tokens.access_token, laptop.tokens.session_id

    await world.revoke_session(token, other, request_id="revoke-1")
    await world.revoke_session(token, other, request_id="revoke-1")
    error = await refused(world.revoke_session(token, other, request_id="revoke-2"))

    assert error.reason == "SESSION_NOT_FOUND"
    assert [e for e in world.history(LAN) if e[0] == "revoke_session"] == [
        ("revoke_session", "ok", None)
    ]


async def test_a_malformed_session_id_is_refused_before_any_transaction(world: World) -> None:
    tokens = (await _signed_in(world)).tokens
    before = world.uow.transactions
    error = await refused(world.revoke_session(tokens.access_token, "ses_nope"))
    assert isinstance(error, InvalidInput) and error.reason == "SESSION_ID_INVALID"
    assert world.uow.transactions == before
