"""The registry records a citizen's death: the account is deactivated (no
sign-in, sessions and shares end), Verify says CITIZEN_DECEASED only to a
party that proved a credential, and Register answers as for a stranger."""

from __future__ import annotations

from datetime import date, timedelta

from eid_service.domain.account import AccountState
from eid_service.domain.errors import InvalidInput, NotFound
from eid_service.domain.notices import NoticeKind
from eid_service.domain.share import Attribute
from eid_service.use_cases.deceased import ACTOR, DeathRecorded, record_death
from eid_service.use_cases.party_webhooks import set_webhook
from eid_service.use_cases.status_events import STATUS_EVENT_CHANNEL
from eid_service.use_cases.verified import Verification
from eid_service.use_cases.verify_otp import OtpSent, request_otp, verify_one_time_code
from tests.unit.use_case_kit import (
    CHILD,
    LAN,
    MINH,
    PASSWORD,
    STRANGER,
    WRONG_PASSWORD,
    World,
    as_seen,
    refused,
)

DIED = date(2025, 1, 5)


async def _record(world: World, pid: str, died_on: date = DIED) -> DeathRecorded:
    return await record_death(world.uow, world.ctx, pid, died_on)


async def test_a_death_deactivates_the_account_and_ends_its_sessions_and_shares(
    world: World,
) -> None:
    await world.active(LAN)
    session = await world.sign_in(LAN)
    share = await world.share(session.tokens.access_token, [Attribute.FULL_NAME])
    bank = world.party()

    done = await _record(world, LAN.personal_id)

    assert done.newly_recorded
    assert done.deactivated_account_id is not None
    assert done.revoked_sessions == 1
    assert world.state_of(LAN) is AccountState.DEACTIVATED
    assert world.revoked_reason(session.tokens.session_id) == "account_deactivated"
    events = world.audit_events(LAN)
    assert (events[-1].action, events[-1].outcome, events[-1].actor) == (
        "death",
        "account_deactivated",
        ACTOR,
    )
    # The party holding the QR proved it: it is told why.
    assert (await refused(world.redeem(bank, share.token))).reason == "CITIZEN_DECEASED"


async def test_only_who_knows_the_password_is_told_the_citizen_died(world: World) -> None:
    await world.active(LAN)
    bank = world.party()
    await _record(world, LAN.personal_id)

    told = await refused(world.verify(bank, LAN.personal_id, PASSWORD))
    assert told.reason == "CITIZEN_DECEASED"
    wrong = await world.verify(bank, LAN.personal_id, WRONG_PASSWORD)
    stranger = await world.verify(bank, STRANGER.personal_id, WRONG_PASSWORD)
    assert (wrong.verified, stranger.verified) == (False, False)
    assert (await refused(world.sign_in(LAN))).reason == "CITIZEN_DECEASED"
    assert (await refused(world.sign_in(LAN, WRONG_PASSWORD))).reason == "INVALID_CREDENTIALS"


async def test_a_code_sent_before_the_death_is_told_it_and_no_new_one_is_sent(
    world: World,
) -> None:
    await world.active(LAN)
    bank = world.party()
    pid = LAN.personal_id

    async def request() -> OtpSent:
        return await request_otp(
            world.uow, world.ctx, bank, pid, world.reply(OtpSent, "o", pid, "")
        )

    await request()
    code = world.newest_code(LAN.phone, NoticeKind.VERIFY_CODE)
    await _record(world, pid)

    async def verify() -> Verification:
        reply = world.reply(Verification, "verify", (pid, code), "")
        return await verify_one_time_code(world.uow, world.ctx, bank, pid, code, None, reply)

    error = await refused(verify())
    assert error.reason == "CITIZEN_DECEASED"
    world.clock.advance(timedelta(minutes=1))  # one code a minute per party and citizen
    await request()
    assert world.sent_to(LAN.phone).count(NoticeKind.VERIFY_CODE) == 1


async def test_register_answers_a_deceased_record_as_a_stranger(world: World) -> None:
    await _record(world, MINH.personal_id)  # no account yet

    deceased = await refused(world.register(MINH))
    stranger = await refused(world.register(STRANGER))
    assert as_seen(deceased) == as_seen(stranger)
    assert deceased.reason == "REGISTRY_MISMATCH"


async def test_a_pending_account_is_deactivated_and_cannot_be_activated(world: World) -> None:
    await world.register(LAN)
    code = world.activation_code(LAN)
    await _record(world, LAN.personal_id)

    assert world.state_of(LAN) is AccountState.DEACTIVATED
    assert (await refused(world.activate(LAN, code))).reason == "ACTIVATION_CODE_INVALID"


async def test_unknown_repeated_and_impossible_records_are_refused(world: World) -> None:
    assert isinstance(await refused(_record(world, STRANGER.personal_id)), NotFound)
    await world.active(LAN)
    await _record(world, LAN.personal_id)
    again = await refused(_record(world, LAN.personal_id))
    assert again.reason == "CITIZEN_NOT_FOUND"

    ahead = await refused(_record(world, MINH.personal_id, world.clock().date().replace(year=2099)))
    before_birth = await refused(_record(world, CHILD.personal_id, date(2014, 12, 31)))
    assert isinstance(ahead, InvalidInput) and isinstance(before_birth, InvalidInput)
    assert (ahead.reason, before_birth.reason) == (
        "DEATH_DATE_IN_FUTURE",
        "DEATH_DATE_BEFORE_BIRTH",
    )
    # Nothing was recorded for them.
    assert (await world.register(MINH)).account.state is AccountState.PENDING


async def test_a_second_run_deactivates_an_account_the_first_did_not_see(world: World) -> None:
    """An account registered while the death was being recorded (possible on
    PostgreSQL) is deactivated by running the command again."""
    await world.active(LAN)
    world.uow.state.deaths[LAN.personal_id] = DIED  # recorded, the account missed

    done = await _record(world, LAN.personal_id)
    assert (done.newly_recorded, done.deactivated_account_id is not None) == (False, True)
    assert world.state_of(LAN) is AccountState.DEACTIVATED


async def test_parties_that_verified_the_citizen_hear_of_the_deactivation(world: World) -> None:
    await world.active(LAN)
    bank, telco = world.party("Bank"), world.party("Telco")
    for party in (bank, telco):
        await set_webhook(world.uow, world.ctx, party.id, "https://example.vn/eid/events")
    assert (await world.verify(bank, LAN.personal_id, PASSWORD)).verified

    await _record(world, LAN.personal_id)

    events = [
        (m.destination, m.notice.subject)
        for m in world.uow.state.outbox.values()
        if m.channel == STATUS_EVENT_CHANNEL and m.notice is not None
    ]
    assert events == [(bank.id, "account.deactivated")]  # telco never verified LAN
