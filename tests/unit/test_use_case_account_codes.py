"""ResendActivationCode and SendAccountCode: a code to the contact typed if it
matches an eligible account, the same answer either way, and limits a
stranger cannot spend for the citizen."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from eid_service.domain.account import AccountState
from eid_service.domain.activation import (
    ACCOUNT_CODE_TTL,
    ACTIVATION_CODE_TTL,
    MAX_ACTIVATION_CODE_GUESSES,
    CodePurpose,
)
from eid_service.domain.credential_policy import MAX_FAILURES_PER_SOURCE
from eid_service.domain.errors import InvalidInput, TooManyAttempts
from eid_service.domain.notices import NoticeKind
from eid_service.domain.rate_limits import Limit, SendLimits
from eid_service.use_cases.one_time_codes import CodeSent
from tests.unit.use_case_kit import (
    CITIZEN_IP,
    LAN,
    MINH,
    STRANGER,
    STRANGER_IP,
    Citizen,
    Cost,
    World,
    as_seen,
    refused,
    unknown_id,
)

ACTIVATION, LOCK, UNLOCK = CodePurpose.ACTIVATION, CodePurpose.LOCK, CodePurpose.UNLOCK
LAN_EMAIL = replace(LAN, email="lan.nguyen@Example.VN")
OTHER_PHONE = "0977000111"
MINUTE = timedelta(minutes=1)


def _codes_sent(world: World) -> int:
    return sum(
        1
        for m in world.uow.state.outbox.values()
        if m.notice is not None and m.notice.kind.value.endswith("_code")
    )


# ---- what is sent -----------------------------------------------------------


async def test_a_pending_citizen_gets_a_new_activation_code_and_the_old_one_still_works(
    world: World,
) -> None:
    """Anyone who knows the ID number and the phone can have a code resent:
    the citizen's code keeps working through the next two (before, each new
    code voided the one before it, so a stranger resending every minute kept
    the citizen from activating)."""
    await world.register(LAN)
    old = world.activation_code(LAN)

    sent = await world.request_code(ACTIVATION, LAN, phone=LAN.phone)

    assert sent == CodeSent("sms", "+84 *** *** 678", world.clock() + ACTIVATION_CODE_TTL)
    assert world.sent_to(LAN.phone) == [NoticeKind.ACTIVATION_CODE] * 2
    assert world.history(LAN)[-1] == ("request_activation_code", "sent", None)
    await world.request_code(ACTIVATION, LAN, phone=LAN.phone, source="ip:198.51.100.9")
    account = await world.activate(LAN, old)
    assert account.state is AccountState.ACTIVE


async def test_only_the_three_newest_activation_codes_work(world: World) -> None:
    await world.register(LAN)
    codes = [world.activation_code(LAN)]
    for n in range(3):
        world.clock.advance(timedelta(minutes=1))
        await world.request_code(ACTIVATION, LAN, phone=LAN.phone, source=f"ip:198.51.100.{n}")
        codes.append(world.newest_code(LAN.phone))

    if codes[0] not in codes[1:]:  # the same six digits one time in a million
        error = await refused(world.activate(LAN, codes[0]))
        assert error.reason == "ACTIVATION_CODE_INVALID"
    assert (await world.activate(LAN, codes[1])).state is AccountState.ACTIVE


async def test_an_older_activation_code_works_only_until_its_own_expiry(world: World) -> None:
    await world.register(LAN)
    old = world.activation_code(LAN)
    world.clock.advance(ACTIVATION_CODE_TTL - timedelta(minutes=1))
    await world.request_code(ACTIVATION, LAN, phone=LAN.phone)
    new = world.newest_code(LAN.phone)
    world.clock.advance(timedelta(minutes=1))

    if old != new:
        error = await refused(world.activate(LAN, old))
        assert error.reason == "ACTIVATION_CODE_EXPIRED"
    assert (await world.activate(LAN, new)).state is AccountState.ACTIVE


async def test_a_wrong_activation_code_counts_against_each_code_that_works(world: World) -> None:
    """So a guess at three codes at once spends them together: none outlives
    MAX_ACTIVATION_CODE_GUESSES wrong guesses, and with all spent the caller
    is told to ask for a new one."""
    await world.register(LAN)
    old = world.activation_code(LAN)
    world.clock.advance(timedelta(minutes=1))
    await world.request_code(ACTIVATION, LAN, phone=LAN.phone)
    new = world.newest_code(LAN.phone)
    wrong = next(c for c in ("000000", "111111", "222222") if c not in (old, new))
    for guess in range(MAX_ACTIVATION_CODE_GUESSES):
        source = f"ip:guesser-{guess // MAX_FAILURES_PER_SOURCE}"
        error = await refused(world.activate(LAN, wrong, source=source))
        assert error.reason == "ACTIVATION_CODE_INVALID"

    error = await refused(world.activate(LAN, wrong, source="ip:one-more"))
    assert error.reason == "ACTIVATION_ATTEMPTS_EXCEEDED"
    for code in (old, new):
        error = await refused(world.activate(LAN, code))
        assert error.reason == "ACTIVATION_ATTEMPTS_EXCEEDED"
    assert world.state_of(LAN) is AccountState.PENDING


async def test_a_code_goes_to_the_email_when_the_email_is_typed(world: World) -> None:
    await world.register(LAN_EMAIL)

    sent = await world.request_code(ACTIVATION, LAN, email="lan.nguyen@example.vn")

    assert (sent.channel, sent.masked_destination) == ("email", "l***@example.vn")
    assert world.sent_to(LAN_EMAIL.email) == [NoticeKind.ACTIVATION_CODE]
    await world.activate(LAN, world.newest_code(LAN_EMAIL.email))


async def test_lock_codes_go_to_active_accounts_and_unlock_codes_to_locked_ones(
    world: World,
) -> None:
    await world.active(LAN)

    sent = await world.request_code(LOCK, LAN, phone=LAN.phone)
    assert sent.expires_at == world.clock() + ACCOUNT_CODE_TTL
    assert world.sent_to(LAN.phone)[-1] is NoticeKind.LOCK_CODE
    await world.request_code(UNLOCK, LAN, phone=LAN.phone)  # not locked: nothing sent
    assert world.sent_to(LAN.phone)[-1] is NoticeKind.LOCK_CODE

    world.set_state(LAN, AccountState.LOCKED)
    world.clock.advance(MINUTE)
    await world.request_code(LOCK, LAN, phone=LAN.phone)  # already locked: nothing sent
    assert world.sent_to(LAN.phone)[-1] is NoticeKind.LOCK_CODE
    await world.request_code(UNLOCK, LAN, phone=LAN.phone)
    assert world.sent_to(LAN.phone)[-1] is NoticeKind.UNLOCK_CODE

    assert [e[1] for e in world.history(LAN) if e[0].startswith("request_")] == [
        "sent",
        "not_sent",
        "not_sent",
        "sent",
    ]


# ---- what a stranger learns -------------------------------------------------


async def _asked(
    world: World, purpose: CodePurpose, pid: str, **contact: str
) -> tuple[CodeSent, Cost, int]:
    """The answer, what it cost, and how many codes were sent."""
    before, sent = world.cost(), _codes_sent(world)
    answer = await world.request_code(purpose, pid, source=STRANGER_IP, **contact)
    return answer, world.cost() - before, _codes_sent(world) - sent


async def test_the_answer_and_its_cost_never_tell_whether_the_details_match(
    world: World,
) -> None:
    """Typing the same phone with different ID numbers: a match, an account
    with another phone, an account in the wrong state, and no account."""
    await world.register(LAN)  # PENDING, phone 0912345678
    await world.active(MINH)  # ACTIVE, phone 0987654321
    phone = LAN.phone

    match = await _asked(world, ACTIVATION, LAN.personal_id, phone=phone)
    other_phone = await _asked(world, ACTIVATION, MINH.personal_id, phone=phone)
    unknown = await _asked(world, ACTIVATION, STRANGER.personal_id, phone=phone)
    never = await _asked(world, ACTIVATION, unknown_id(7), phone=phone)
    wrong_state = await _asked(world, ACTIVATION, MINH.personal_id, phone=MINH.phone)

    one_write = Cost(hashes=0, verifications=0, writes=1, reads=0)
    shown = CodeSent("sms", "+84 *** *** 678", world.clock() + ACTIVATION_CODE_TTL)
    assert match == (shown, one_write, 1)
    for other in (other_phone, unknown, never):
        assert other == (shown, one_write, 0)
    assert wrong_state[1:] == (one_write, 0)


async def test_an_email_that_is_not_the_registered_one_gets_the_same_answer(
    world: World,
) -> None:
    await world.register(LAN_EMAIL)
    await world.register(MINH)  # no email at all
    email = "lan.nguyen@example.vn"

    match = await _asked(world, ACTIVATION, LAN.personal_id, email=email)
    no_email = await _asked(world, ACTIVATION, MINH.personal_id, email=email)

    assert no_email[:2] == match[:2]
    assert (match[2], no_email[2]) == (1, 0)


async def test_a_limit_reached_looks_the_same_for_a_match_and_a_mismatch(world: World) -> None:
    await world.register(LAN)
    await world.request_code(ACTIVATION, LAN, phone=LAN.phone)
    await world.request_code(ACTIVATION, STRANGER, phone=LAN.phone)

    match = await refused(world.request_code(ACTIVATION, LAN, phone=LAN.phone))
    mismatch = await refused(world.request_code(ACTIVATION, STRANGER, phone=LAN.phone))

    assert isinstance(match, TooManyAttempts) and match.reason == "TOO_MANY_REQUESTS"
    assert as_seen(match) == as_seen(mismatch)


# ---- limits -----------------------------------------------------------------


async def test_one_code_a_minute_then_retry_after_tells_how_long(world: World) -> None:
    await world.register(LAN)
    world.clock.advance(timedelta(seconds=20))
    await world.request_code(ACTIVATION, LAN, phone=LAN.phone)

    error = await refused(world.request_code(ACTIVATION, LAN, phone=LAN.phone))

    assert isinstance(error, TooManyAttempts) and error.reason == "TOO_MANY_REQUESTS"
    wait = int(error.metadata["retry_after_seconds"])
    assert 40 <= wait <= 41
    assert world.sent_to(LAN.phone) == [NoticeKind.ACTIVATION_CODE] * 2
    world.clock.advance(timedelta(seconds=wait))
    await world.request_code(ACTIVATION, LAN, phone=LAN.phone)
    assert world.sent_to(LAN.phone) == [NoticeKind.ACTIVATION_CODE] * 3


async def test_five_codes_a_day_and_refusals_do_not_shorten_the_wait(world: World) -> None:
    await world.active(LAN)
    for _ in range(5):
        await world.request_code(LOCK, LAN, phone=LAN.phone)
        world.clock.advance(MINUTE)

    error = await refused(world.request_code(LOCK, LAN, phone=LAN.phone))
    assert error.reason == "TOO_MANY_REQUESTS"
    wait = timedelta(seconds=int(error.metadata["retry_after_seconds"]))
    world.clock.advance(wait - timedelta(minutes=2))
    assert (await refused(world.request_code(LOCK, LAN, phone=LAN.phone))).reason == (
        "TOO_MANY_REQUESTS"
    )
    assert world.sent_to(LAN.phone).count(NoticeKind.LOCK_CODE) == 5

    world.clock.advance(timedelta(minutes=2))
    await world.request_code(LOCK, LAN, phone=LAN.phone)
    assert world.sent_to(LAN.phone).count(NoticeKind.LOCK_CODE) == 6


async def test_a_request_the_shared_ceiling_refuses_spends_nothing_of_the_senders(
    world: World,
) -> None:
    """Three addresses holding the 3-a-minute ceiling for five minutes
    refused the citizen's own requests meanwhile, and those refusals spent
    the citizen's own allowance for the rest of the day (found in review)."""
    await world.active(LAN)
    strangers = [f"ip:198.51.100.{n}" for n in range(3)]
    for _ in range(5):
        for source in strangers:
            await world.request_code(LOCK, LAN, phone=LAN.phone, source=source)
        busy = await refused(world.request_code(LOCK, LAN, phone=LAN.phone, source=CITIZEN_IP))
        assert busy.reason == "TOO_MANY_REQUESTS"
        world.clock.advance(MINUTE)

    world.clock.advance(60 * MINUTE)
    await world.request_code(LOCK, LAN, phone=LAN.phone, source=CITIZEN_IP)
    assert world.sent_to(LAN.phone).count(NoticeKind.LOCK_CODE) == 16


async def test_each_kind_of_code_has_its_own_budget(world: World) -> None:
    await world.active(LAN)
    await world.request_code(LOCK, LAN, phone=LAN.phone)
    await world.request_code(UNLOCK, LAN, phone=LAN.phone)
    await world.request_code(ACTIVATION, LAN, phone=LAN.phone)


async def test_a_stranger_with_the_wrong_phone_cannot_spend_the_citizens_budget(
    world: World,
) -> None:
    await world.active(LAN)
    for _ in range(5):
        await world.request_code(LOCK, LAN, phone=OTHER_PHONE, source=STRANGER_IP)
        world.clock.advance(MINUTE)
    spent = await refused(world.request_code(LOCK, LAN, phone=OTHER_PHONE, source=STRANGER_IP))
    assert spent.reason == "TOO_MANY_REQUESTS"  # the stranger's own budget
    assert world.sent_to(OTHER_PHONE) == []

    sent = await world.request_code(LOCK, LAN, phone=LAN.phone)
    assert sent.channel == "sms"
    assert world.sent_to(LAN.phone)[-1] is NoticeKind.LOCK_CODE


async def test_a_stranger_who_knows_the_phone_spends_only_their_own_budget(
    world: World,
) -> None:
    """A phone number is no secret: a stranger asking for the citizen's
    unlock code from their own address spends that address's 5 a day, not
    the citizen's. Before, the citizen was refused for the rest of the day
    (found by an attacker's pass)."""
    await world.active(LAN)
    world.set_state(LAN, AccountState.LOCKED)
    for _ in range(5):
        await world.request_code(UNLOCK, LAN, phone=LAN.phone, source=STRANGER_IP)
        world.clock.advance(2 * MINUTE)
    spent = await refused(world.request_code(UNLOCK, LAN, phone=LAN.phone, source=STRANGER_IP))
    assert spent.reason == "TOO_MANY_REQUESTS"

    await world.request_code(UNLOCK, LAN, phone=LAN.phone, source=CITIZEN_IP)

    assert world.sent_to(LAN.phone).count(NoticeKind.UNLOCK_CODE) == 6


async def test_all_sources_together_send_a_phone_at_most_3_codes_a_minute(
    world: World,
) -> None:
    await world.active(LAN)
    for n in range(3):
        await world.request_code(LOCK, LAN, phone=LAN.phone, source=f"ip:198.51.100.{n}")

    error = await refused(world.request_code(LOCK, LAN, phone=LAN.phone, source=CITIZEN_IP))

    assert error.reason == "TOO_MANY_REQUESTS"
    assert int(error.metadata["retry_after_seconds"]) <= 61
    world.clock.advance(MINUTE)
    await world.request_code(LOCK, LAN, phone=LAN.phone, source=CITIZEN_IP)
    assert world.sent_to(LAN.phone).count(NoticeKind.LOCK_CODE) == 4


async def test_all_sources_together_send_a_phone_at_most_50_codes_a_day(
    world: World,
) -> None:
    """10 sources spending their day's allowance: then nobody, the citizen
    included, gets a code of that purpose for that phone until the next day."""
    await world.active(LAN)
    for n in range(50):
        await world.request_code(LOCK, LAN, phone=LAN.phone, source=f"ip:198.51.100.{n // 5}")
        world.clock.advance(MINUTE)

    error = await refused(world.request_code(LOCK, LAN, phone=LAN.phone, source=CITIZEN_IP))

    assert error.reason == "TOO_MANY_REQUESTS"
    assert int(error.metadata["retry_after_seconds"]) > 3600
    assert world.sent_to(LAN.phone).count(NoticeKind.LOCK_CODE) == 50


async def test_a_source_is_limited_whatever_it_asks_for() -> None:
    few = SendLimits(code_per_source=Limit("code-source", 2, timedelta(hours=1)))
    world = World(send_limits=few)
    await world.register(LAN)

    await world.request_code(ACTIVATION, STRANGER, phone=STRANGER.phone, source=STRANGER_IP)
    await world.request_code(ACTIVATION, unknown_id(1), phone=OTHER_PHONE, source=STRANGER_IP)
    error = await refused(world.request_code(ACTIVATION, LAN, phone=LAN.phone, source=STRANGER_IP))

    assert error.reason == "TOO_MANY_REQUESTS"
    assert world.sent_to(LAN.phone) == [NoticeKind.ACTIVATION_CODE]  # the registration's only
    await world.request_code(ACTIVATION, LAN, phone=LAN.phone, source=CITIZEN_IP)
    assert world.sent_to(LAN.phone) == [NoticeKind.ACTIVATION_CODE] * 2


# ---- retries and malformed requests -----------------------------------------


async def test_a_retry_with_the_same_request_id_sends_nothing_more(world: World) -> None:
    await world.register(LAN)
    first = await world.request_code(ACTIVATION, LAN, phone=LAN.phone, request_id="resend-1")
    world.clock.advance(timedelta(seconds=5))
    again = await world.request_code(ACTIVATION, LAN, phone=LAN.phone, request_id="resend-1")

    assert again == first
    assert world.sent_to(LAN.phone) == [NoticeKind.ACTIVATION_CODE] * 2
    # The retry did not count: the next minute's request goes through.
    world.clock.advance(MINUTE)
    await world.request_code(ACTIVATION, LAN, phone=LAN.phone)


async def test_a_request_id_names_one_request_by_its_content(world: World) -> None:
    """Calls without credentials are scoped by their content: anyone knows an
    ID number, so a stranger's call with an id must not spoil the citizen's
    call with it; the same content again is a retry and gets its answer."""
    await world.register(LAN)
    stranger = await world.request_code(ACTIVATION, LAN, phone=MINH.phone, request_id="resend-1")
    first = await world.request_code(ACTIVATION, LAN, phone=LAN.phone, request_id="resend-1")
    assert first != stranger
    again = await world.request_code(ACTIVATION, LAN, phone=LAN.phone, request_id="resend-1")
    assert again == first
    other = await world.request_code(ACTIVATION, MINH, phone=MINH.phone, request_id="resend-1")
    assert other != first


@pytest.mark.parametrize(
    ("citizen", "contact", "reason"),
    [
        (LAN, {}, "CONTACT_MISSING"),
        (LAN, {"phone": LAN.phone, "email": "lan@example.vn"}, "CONTACT_AMBIGUOUS"),
        (LAN, {"phone": "12345"}, "PHONE_NUMBER_INVALID"),
        (LAN, {"email": "not-an-email"}, "EMAIL_INVALID"),
        ("12345", {"phone": LAN.phone}, "PERSONAL_ID_MALFORMED"),
    ],
)
async def test_a_malformed_request_is_refused_before_any_transaction(
    world: World, citizen: Citizen | str, contact: dict[str, str], reason: str
) -> None:
    error = await refused(world.request_code(ACTIVATION, citizen, **contact))
    assert isinstance(error, InvalidInput) and error.reason == reason
    assert world.uow.transactions == 0
