"""Approval requests from the citizen's side and the party's start: who sees
a request, the verification code and its wrong guesses, the QR claim, the
limits, and that a stranger learns nothing about who has an account."""

from __future__ import annotations

from dataclasses import astuple, replace
from datetime import timedelta

import pytest

from eid_service.domain.account import AccountState
from eid_service.domain.approval import (
    APPROVAL_TTL,
    PER_CITIZEN,
    PER_PARTY_CITIZEN_HOUR,
    ApprovalState,
)
from eid_service.domain.errors import (
    InvalidInput,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    TooManyAttempts,
    Unauthenticated,
)
from eid_service.domain.party import VerifyMode
from eid_service.domain.share import Attribute
from eid_service.use_cases.purge import purge_expired
from tests.unit.approval_kit import claim, decide, pending, session_of, start, wrong
from tests.unit.use_case_kit import LAN, MINH, STRANGER, World, as_seen, refused

A = Attribute
BASIC = frozenset({A.FULL_NAME, A.BIRTH_DATE, A.GENDER})


async def test_the_citizen_sees_the_request_with_the_party_the_attributes_and_the_code(
    world: World,
) -> None:
    await world.active(LAN)
    bank = world.party("Ngân hàng A", BASIC)
    phone = await session_of(world, LAN)
    assert (await pending(world, phone)).approvals == []

    started = await start(world, bank, LAN, message="Đăng nhập ngân hàng điện tử")
    assert started.expires_at == world.clock() + APPROVAL_TTL
    assert len(started.code) == 4 and started.code.isdigit() and started.token == ""

    [shown] = (await pending(world, phone)).approvals
    assert (shown.request.id, shown.party_name, shown.request.code) == (
        started.approval_id,
        "Ngân hàng A",
        started.code,
    )
    assert shown.request.attributes == BASIC  # all the party may read, as none was named
    assert shown.request.message == "Đăng nhập ngân hàng điện tử"
    assert shown.status is ApprovalState.PENDING
    assert len(set(shown.choices)) == 3 and started.code in shown.choices
    # The same choices in the same order every time the app lists it.
    assert (await pending(world, phone)).approvals[0].choices == shown.choices

    decided = await decide(world, phone, started.approval_id, started.code)
    assert decided.status is ApprovalState.APPROVED
    assert (await pending(world, phone)).approvals == []
    assert world.history(LAN)[-2:] == [
        ("approval.started", "shown", bank.id),
        ("approval.approved", "ok", bank.id),
    ]


async def test_pages_of_pending_requests_newest_first(world: World) -> None:
    await world.active(LAN)
    parties = [world.party(f"Party {i}") for i in range(3)]
    ids = []
    for party in parties:
        ids.append((await start(world, party, LAN)).approval_id)
        world.clock.advance(timedelta(seconds=1))
    phone = await session_of(world, LAN)

    first = await pending(world, phone, page_size=2)
    assert [v.request.id for v in first.approvals] == [ids[2], ids[1]]
    rest = await pending(world, phone, page_size=2, page_token=first.next_page_token)
    assert [v.request.id for v in rest.approvals] == [ids[0]] and rest.next_page_token == ""
    bad = await refused(pending(world, phone, page_token="bm9wZQ"))
    assert bad.reason == "PAGE_TOKEN_INVALID"
    assert (await refused(pending(world, None))).reason == "SESSION_MISSING"


async def test_a_wrong_code_voids_the_request_and_a_retry_is_answered_alike(
    world: World,
) -> None:
    await world.active(LAN)
    bank = world.party()
    started = await start(world, bank, LAN)
    phone = await session_of(world, LAN)
    bad = wrong(started.code)

    first = await refused(decide(world, phone, started.approval_id, bad, request_id="try-1"))
    assert isinstance(first, InvalidInput)
    assert (first.reason, first.metadata["attempts_left"]) == ("VERIFICATION_CODE_WRONG", "0")
    again = await refused(decide(world, phone, started.approval_id, bad, request_id="try-1"))
    assert as_seen(again) == as_seen(first)  # the same request: answered as it was

    late = await refused(decide(world, phone, started.approval_id, started.code))
    assert isinstance(late, PreconditionFailed)
    assert (late.reason, late.metadata) == ("APPROVAL_ALREADY_DECIDED", {"state": "voided"})
    assert ("approval.voided", "wrong_code", bank.id) in world.history(LAN)
    malformed = await refused(decide(world, phone, started.approval_id, "12a4"))
    assert malformed.reason == "VERIFICATION_CODE_MALFORMED"


async def test_tapping_through_the_offered_choices_approves_nothing(world: World) -> None:
    """A push-bomb: the citizen picks the offered codes in turn without
    looking at the party's screen. Before, as many tries as choices
    approved every request (found by an attacker's pass)."""
    await world.active(LAN)
    blind = 0
    for n in range(12):
        attacker = world.party(f"Attacker {n}")  # each within its own start limits
        phone = await session_of(world, LAN)
        started = await start(world, attacker, LAN)
        [shown] = [
            a
            for a in (await pending(world, phone)).approvals
            if a.request.id == started.approval_id
        ]
        if shown.choices[0] == started.code:
            await decide(world, phone, started.approval_id, "", approve=False)
            continue  # a lucky first tap approves: the odds of one pick, 1 in 3
        blind += 1
        for pick in shown.choices:
            error = await refused(decide(world, phone, started.approval_id, pick))
            assert error.reason in ("VERIFICATION_CODE_WRONG", "APPROVAL_ALREADY_DECIDED")
    assert blind > 0  # 2 in 3 requests; all 12 lucky: 1 in 531,441
    assert not [a for a, o, _ in world.history(LAN) if a == "approval.approved"]


async def test_declining_needs_no_code_and_a_decision_stands(world: World) -> None:
    await world.active(LAN)
    bank = world.party()
    started = await start(world, bank, LAN)
    phone = await session_of(world, LAN)

    declined = await decide(world, phone, started.approval_id, approve=False)
    assert declined.status is ApprovalState.DECLINED
    changed_mind = await refused(decide(world, phone, started.approval_id, started.code))
    assert changed_mind.reason == "APPROVAL_ALREADY_DECIDED"
    assert world.history(LAN)[-1] == ("approval.declined", "ok", bank.id)


async def test_a_request_expires_after_two_minutes(world: World) -> None:
    await world.active(LAN)
    started = await start(world, world.party(), LAN)
    phone = await session_of(world, LAN)
    world.clock.advance(APPROVAL_TTL)

    assert (await pending(world, phone)).approvals == []
    late = await refused(decide(world, phone, started.approval_id, started.code))
    assert isinstance(late, PreconditionFailed) and late.reason == "APPROVAL_EXPIRED"


async def test_only_the_citizen_it_names_sees_or_decides_it(world: World) -> None:
    await world.active(LAN)
    await world.active(MINH)
    started = await start(world, world.party(), LAN)
    minh = await session_of(world, MINH)

    assert (await pending(world, minh)).approvals == []
    theirs = await refused(decide(world, minh, started.approval_id, started.code))
    unknown = await refused(decide(world, minh, "apr_" + "0" * 24, "1234"))
    assert isinstance(theirs, NotFound)
    assert as_seen(theirs) == as_seen(unknown)
    malformed = await refused(decide(world, minh, "apr_1", "1234"))
    assert malformed.reason == "APPROVAL_ID_INVALID"
    stale = await refused(decide(world, "eids_not-a-session", started.approval_id, "1234"))
    assert isinstance(stale, Unauthenticated) and stale.reason == "SESSION_INVALID"


async def test_a_stranger_learns_nothing_about_who_has_an_account(world: World) -> None:
    """Unknown, PENDING and LOCKED ID numbers answer like an active account's,
    at the same cost, and their requests are shown to nobody."""
    await world.active(LAN)
    await world.register(MINH)  # PENDING
    bank = world.party()

    answers = []
    for citizen in (LAN, STRANGER, MINH):
        before = world.cost()
        started = await start(world, bank, citizen)
        answers.append(
            (type(started), started.expires_at, len(started.code), world.cost() - before)
        )
    world.set_state(LAN, AccountState.LOCKED)
    before = world.cost()
    started = await start(world, world.party("Telco"), LAN)
    answers.append((type(started), started.expires_at, len(started.code), world.cost() - before))
    assert len(set(answers)) == 1
    assert [h[:2] for h in world.history(STRANGER)] == [("approval.started", "not_shown")]


async def test_one_party_cannot_flood_a_citizen(world: World) -> None:
    await world.active(LAN)
    bank, telco = world.party("Bank"), world.party("Telco")
    for _ in range(3):
        await start(world, bank, LAN)
    flood = await refused(start(world, bank, LAN))
    assert isinstance(flood, TooManyAttempts) and flood.reason == "TOO_MANY_REQUESTS"
    assert int(flood.metadata["retry_after_seconds"]) <= 121
    # Alike for an ID number with no account: the limit tells nothing either.
    for _ in range(3):
        await start(world, bank, STRANGER)
    assert as_seen(await refused(start(world, bank, STRANGER)))[:2] == as_seen(flood)[:2]

    await start(world, telco, LAN)  # another party is not held up
    world.clock.advance(APPROVAL_TTL)
    await start(world, bank, LAN)


async def test_one_party_cannot_keep_a_citizens_other_parties_out(world: World) -> None:
    """Before, one party starting 3 requests every 2 minutes (its own
    limit) spent the citizen's hour over all parties in 20 minutes, and
    kept every other party out for as long as it went on (found by an
    attacker's pass)."""
    await world.active(LAN)
    hostile, bank = world.party("Hostile"), world.party("Bank")
    started = 0
    while True:  # as fast as its limits let it
        try:
            await start(world, hostile, LAN)
            started += 1
        except TooManyAttempts as flood:
            if int(flood.metadata["retry_after_seconds"]) > APPROVAL_TTL.total_seconds() + 1:
                break  # its hour is spent
            world.clock.advance(APPROVAL_TTL)
    assert PER_PARTY_CITIZEN_HOUR.hits <= started < PER_CITIZEN.hits
    assert (await start(world, bank, LAN)).approval_id  # the citizen's bank still gets through


async def test_a_retried_start_is_the_same_request(world: World) -> None:
    await world.active(LAN)
    bank = world.party()
    first = await start(world, bank, LAN, request_id="login-42")
    again = await start(world, bank, LAN, request_id="login-42")
    assert astuple(again) == astuple(first)
    assert len((await pending(world, await session_of(world, LAN))).approvals) == 1


async def test_start_checks_mode_scopes_and_message(world: World) -> None:
    bank = world.party("Bank", BASIC)
    no_mode = replace(bank, modes=frozenset({VerifyMode.QR_SHARE}))
    assert (await refused(start(world, no_mode, LAN))).reason == "MODE_NOT_ALLOWED"
    beyond = await refused(start(world, bank, LAN, requested=frozenset({A.PERSONAL_ID})))
    assert isinstance(beyond, PermissionDenied) and beyond.reason == "SCOPE_NOT_ALLOWED"
    long = await refused(start(world, bank, LAN, message="x" * 101))
    assert long.reason == "APPROVAL_MESSAGE_INVALID"
    odd = await refused(start(world, bank, LAN, message="a\nb"))
    assert odd.reason == "APPROVAL_MESSAGE_INVALID"
    both = await refused(start(world, bank, "12345", message="\x00"))
    assert isinstance(both, InvalidInput) and both.reason == "INVALID_FIELDS"


async def test_the_qr_variant_goes_to_whoever_claims_it_first(world: World) -> None:
    await world.active(LAN)
    await world.active(MINH)
    kiosk = world.party("Kiosk")
    started = await start(world, kiosk)
    assert started.token.startswith("eidapr1.")
    lan, minh = await session_of(world, LAN), await session_of(world, MINH)
    assert (await pending(world, lan)).approvals == []  # nobody's until claimed

    claimed = await claim(world, lan, started.token)
    assert (claimed.request.id, claimed.party_name, claimed.status) == (
        started.approval_id,
        "Kiosk",
        ApprovalState.PENDING,
    )
    assert [v.request.id for v in (await pending(world, lan)).approvals] == [started.approval_id]
    assert (await claim(world, lan, started.token)).request.id == started.approval_id  # rescan
    taken = await refused(claim(world, minh, started.token))
    assert isinstance(taken, PreconditionFailed) and taken.reason == "APPROVAL_ALREADY_CLAIMED"
    assert (await refused(decide(world, minh, started.approval_id, started.code))).reason == (
        "APPROVAL_NOT_FOUND"
    )
    await decide(world, lan, started.approval_id, started.code)
    assert world.history(LAN)[-2:] == [
        ("approval.claimed", "ok", kiosk.id),
        ("approval.approved", "ok", kiosk.id),
    ]


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("eidapr1." + "A" * 32, "APPROVAL_NOT_FOUND"),
        ("eidapr1.short", "APPROVAL_TOKEN_MALFORMED"),
        ("eid1.something", "APPROVAL_TOKEN_MALFORMED"),
    ],
)
async def test_a_scanned_token_that_is_no_request(world: World, token: str, reason: str) -> None:
    await world.active(LAN)
    assert (await refused(claim(world, await session_of(world, LAN), token))).reason == reason


async def test_an_expired_qr_request_cannot_be_claimed(world: World) -> None:
    await world.active(LAN)
    started = await start(world, world.party())
    world.clock.advance(APPROVAL_TTL)
    late = await refused(claim(world, await session_of(world, LAN), started.token))
    assert late.reason == "APPROVAL_EXPIRED"


async def test_requests_are_purged_a_day_after_they_expire(world: World) -> None:
    await world.active(LAN)
    await start(world, world.party(), LAN)
    world.clock.advance(APPROVAL_TTL + timedelta(hours=23))
    assert (await purge_expired(world.uow, world.clock())).approvals == 0
    world.clock.advance(timedelta(hours=1))
    assert (await purge_expired(world.uow, world.clock())).approvals == 1
    assert world.uow.state.approvals == {}


async def test_starting_counts_against_the_partys_rate_limits(world: World) -> None:
    await world.active(LAN)
    probe = world.party("Probe", citizen_rate=1)
    await start(world, probe, STRANGER)
    again = await refused(start(world, probe, STRANGER))
    assert (type(again), again.reason) == (TooManyAttempts, "PARTY_CITIZEN_RATE_LIMITED")
    await start(world, probe, LAN)  # another citizen is not held up
    kiosk = world.party("Kiosk", rate=1)
    await start(world, kiosk)
    assert (await refused(start(world, kiosk))).reason == "PARTY_RATE_LIMITED"
