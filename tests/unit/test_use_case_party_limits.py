"""Relying parties' rate limits: a bucket per party and a tighter one per
(party, citizen), over every mode that touches citizens; and the audit
entries of parties' calls (reason, request id, trace id)."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import replace
from datetime import timedelta

from eid_service.domain.credential_policy import MAX_FAILURES_PER_SOURCE
from eid_service.domain.errors import InvalidInput, TooManyAttempts
from eid_service.domain.party import RelyingParty
from eid_service.domain.share import Attribute
from eid_service.use_cases.parties import set_party_limits
from eid_service.use_cases.replies import Reply
from eid_service.use_cases.verified import Verification
from eid_service.use_cases.verify import verify_password
from eid_service.use_cases.verify_demographic import DemographicCommand, verify_demographic
from eid_service.use_cases.verify_otp import OtpSent, request_otp, verify_one_time_code
from tests.unit.test_use_case_verify_demographic import _lan_claim
from tests.unit.use_case_kit import (
    LAN,
    MINH,
    PASSWORD,
    WRONG_PASSWORD,
    Citizen,
    World,
    refused,
    unknown_id,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


async def _otp(world: World, party: RelyingParty, pid: str, request_id: str = "") -> OtpSent:
    reply = world.reply(OtpSent, "request_otp", pid, request_id)
    return await request_otp(world.uow, world.ctx, party, pid, reply)


async def _code(world: World, party: RelyingParty, pid: str, code: str) -> Verification:
    reply = world.reply(Verification, "verify", (pid, code), "")
    return await verify_one_time_code(world.uow, world.ctx, party, pid, code, None, reply)


async def _claim(world: World, party: RelyingParty, citizen: Citizen | str) -> Verification:
    """Claims Lan's name, birth date and gender for `citizen`'s ID number."""
    pid = citizen if isinstance(citizen, str) else citizen.personal_id
    cmd = DemographicCommand(pid, _lan_claim())
    reply = world.reply(Verification, "verify", cmd, "")
    return await verify_demographic(world.uow, world.ctx, party, cmd, reply)


async def _limited(call: Awaitable[object]) -> TooManyAttempts:
    error = await refused(call)
    assert isinstance(error, TooManyAttempts), error
    return error


async def test_a_party_gets_a_minute_s_worth_at_once_then_one_token_at_a_time(
    world: World,
) -> None:
    await world.active(LAN)
    bank = world.party(rate=6)
    for _ in range(6):
        assert (await world.verify(bank, LAN.personal_id, PASSWORD)).verified

    over = await _limited(world.verify(bank, LAN.personal_id, PASSWORD))
    assert over.reason == "PARTY_RATE_LIMITED"
    # 6 a minute: the next token comes 10 seconds after the last take.
    assert over.metadata == {"retry_after_seconds": "10.000"}
    world.clock.advance(timedelta(seconds=9.5))
    half = await _limited(world.verify(bank, LAN.personal_id, PASSWORD))
    assert half.metadata == {"retry_after_seconds": "0.500"}
    world.clock.advance(timedelta(seconds=0.5))
    assert (await world.verify(bank, LAN.personal_id, PASSWORD)).verified
    await _limited(world.verify(bank, LAN.personal_id, PASSWORD))


async def test_a_party_over_its_limit_does_not_hold_back_another(world: World) -> None:
    await world.active(LAN)
    busy, other = world.party("Busy", rate=2), world.party("Other", rate=2)
    await world.verify(busy, LAN.personal_id, PASSWORD)
    await world.verify(busy, LAN.personal_id, PASSWORD)
    await _limited(world.verify(busy, LAN.personal_id, PASSWORD))
    assert (await world.verify(other, LAN.personal_id, PASSWORD)).verified


async def test_probing_one_citizen_does_not_block_the_party_s_other_citizens(
    world: World,
) -> None:
    await world.active(LAN)
    await world.active(MINH)
    bank = world.party(rate=100, citizen_rate=3)
    for _ in range(3):
        await world.verify(bank, LAN.personal_id, WRONG_PASSWORD)

    probing = await _limited(world.verify(bank, LAN.personal_id, PASSWORD))
    assert probing.reason == "PARTY_CITIZEN_RATE_LIMITED"
    assert probing.metadata == {"retry_after_seconds": "20.000"}
    assert (await world.verify(bank, MINH.personal_id, PASSWORD)).verified
    # Another party may still verify Lan.
    assert (await world.verify(world.party("Clinic"), LAN.personal_id, PASSWORD)).verified


async def test_unknown_id_numbers_count_as_known_ones_do(world: World) -> None:
    """The (party, citizen) bucket is taken before the number is looked up:
    refused after as many calls, with the same answer, account or not."""
    await world.active(LAN)
    bank = world.party(rate=100, citizen_rate=2)
    seen = {}
    for pid in (LAN.personal_id, unknown_id(7)):
        for _ in range(2):
            await _claim(world, bank, pid)
        error = await _limited(_claim(world, bank, pid))
        seen[pid] = error.reason, error.metadata
    assert seen[LAN.personal_id] == seen[unknown_id(7)]
    assert seen[LAN.personal_id] == (
        "PARTY_CITIZEN_RATE_LIMITED",
        {"retry_after_seconds": "30.000"},
    )


async def test_every_mode_that_touches_citizens_draws_on_the_one_party_bucket(
    world: World,
) -> None:
    await world.active(LAN)
    bank = world.party(rate=5)
    share = await world.shared_by(LAN, [Attribute.FULL_NAME])
    await _otp(world, bank, LAN.personal_id)
    code = world.newest_code(LAN.phone)
    assert (await _code(world, bank, LAN.personal_id, code)).verified
    assert (await _claim(world, bank, LAN)).verified
    assert (await world.verify(bank, LAN.personal_id, PASSWORD)).verified
    assert (await world.redeem(bank, share.token)).verified

    for call in (
        _otp(world, bank, MINH.personal_id),
        _code(world, bank, LAN.personal_id, "123456"),
        _claim(world, bank, LAN),
        world.verify(bank, LAN.personal_id, PASSWORD),
        world.redeem(bank, (await world.shared_by(LAN, [Attribute.FULL_NAME])).token),
    ):
        assert (await _limited(call)).reason == "PARTY_RATE_LIMITED"


async def test_a_refused_call_has_no_effect(world: World) -> None:
    """No SMS, no redemption, no audit entry, and the token the other bucket
    gave is given back."""
    await world.active(LAN)
    await world.active(MINH)
    bank = world.party(rate=3, citizen_rate=1)
    share = await world.shared_by(LAN, [Attribute.FULL_NAME])
    await world.verify(bank, LAN.personal_id, PASSWORD)
    messages, history = len(world.uow.state.outbox), world.history(LAN)

    assert (await _limited(_otp(world, bank, LAN.personal_id))).reason == (
        "PARTY_CITIZEN_RATE_LIMITED"
    )
    assert (await _limited(world.redeem(bank, share.token))).reason == (
        "PARTY_CITIZEN_RATE_LIMITED"
    )
    assert (len(world.uow.state.outbox), world.history(LAN)) == (messages, history)
    # The party's two tokens left were not spent by the refused calls.
    assert (await world.verify(bank, MINH.personal_id, PASSWORD)).verified
    world.clock.advance(timedelta(minutes=1))
    assert (await world.redeem(bank, share.token)).verified  # not consumed before


async def test_once_refused_a_party_is_refused_here_without_the_store(world: World) -> None:
    await world.active(LAN)
    bank = world.party(rate=1)
    await world.verify(bank, LAN.personal_id, PASSWORD)
    await _limited(world.verify(bank, LAN.personal_id, PASSWORD))

    before = world.cost()
    again = await _limited(world.verify(bank, LAN.personal_id, PASSWORD, request_id="r-2"))
    assert again.reason == "PARTY_RATE_LIMITED"
    assert world.cost() - before == type(before)(0, 0, 0, 0)
    world.clock.advance(timedelta(seconds=60))
    assert (await world.verify(bank, LAN.personal_id, PASSWORD)).verified


async def test_a_changed_limit_counts_as_soon_as_the_party_is_read_again(world: World) -> None:
    """The use cases get the party from the cache, refreshed within its TTL:
    the refreshed party's limits are the ones counted."""
    await world.active(LAN)
    bank = world.party(rate=1)
    await world.verify(bank, LAN.personal_id, PASSWORD)
    await _limited(world.verify(bank, LAN.personal_id, PASSWORD))
    raised = replace(bank, rate_per_minute=600)
    world.clock.advance(timedelta(seconds=1))
    # One second at the new rate is 10 tokens' worth.
    for _ in range(10):
        assert (await world.verify(raised, LAN.personal_id, PASSWORD)).verified
    await _limited(world.verify(raised, LAN.personal_id, PASSWORD))


async def test_a_replayed_answer_takes_no_token(world: World) -> None:
    await world.active(LAN)
    bank = world.party(rate=1)
    first = await world.verify(bank, LAN.personal_id, PASSWORD, request_id="r-1")
    again = await world.verify(bank, LAN.personal_id, PASSWORD, request_id="r-1")
    assert again == first


async def test_party_calls_are_audited_with_reason_request_id_and_trace_id(
    world: World,
) -> None:
    await world.active(LAN)
    bank = world.party()

    def traced(request_id: str) -> Reply[Verification, Verification]:
        reply = world.reply(Verification, "verify", request_id, request_id)
        return replace(reply, trace_id=TRACE)

    for password, request_id in ((WRONG_PASSWORD, "r-wrong"), (PASSWORD, "r-right")):
        reply = traced(request_id)
        await verify_password(world.uow, world.ctx, bank, LAN.personal_id, password, reply)
    await _otp(world, bank, unknown_id(3), request_id="r-otp")
    await _claim(world, bank, MINH)  # no account: answered "no match"

    events = [
        (e.action, e.outcome, e.reason, e.request_id, e.trace_id)
        for e in world.audit_events(LAN)[-2:]
    ]
    assert events == [
        ("verify.password", "rejected", "WRONG_PASSWORD", "r-wrong", TRACE),
        ("verify.password", "verified", None, "r-right", TRACE),
    ]
    unknown = world.audit_events(unknown_id(3))[-1]
    assert (unknown.action, unknown.outcome, unknown.reason, unknown.request_id) == (
        "request_otp",
        "not_sent",
        "NO_ACTIVE_ACCOUNT_WITH_PHONE",
        "r-otp",
    )
    claim = world.audit_events(MINH)[-1]
    assert (claim.outcome, claim.reason, claim.request_id) == (
        "rejected",
        "ACCOUNT_NOT_ACTIVE",
        None,
    )
    assert world.chain_intact(LAN)


async def test_a_throttled_password_attempt_is_audited_with_its_reason(world: World) -> None:
    await world.active(LAN)
    bank = world.party()
    for _ in range(MAX_FAILURES_PER_SOURCE):
        await world.verify(bank, LAN.personal_id, WRONG_PASSWORD)
    throttled = await _limited(world.verify(bank, LAN.personal_id, WRONG_PASSWORD))
    assert throttled.reason == "TOO_MANY_FAILED_ATTEMPTS"
    last = world.audit_events(LAN)[-1]
    assert (last.action, last.outcome, last.reason) == (
        "verify.password",
        "rejected",
        "TOO_MANY_FAILED_ATTEMPTS",
    )


async def test_an_operator_changes_a_party_s_limits(world: World) -> None:
    bank = world.party(rate=600, citizen_rate=10)
    changed = await set_party_limits(world.uow, bank.id, 1200, None)
    assert (changed.party.rate_per_minute, changed.party.citizen_rate_per_minute) == (1200, 10)
    stored = world.uow.run_now(lambda r: r.parties.get(bank.id))
    assert stored is not None and stored.party == changed.party

    too_many = await refused(set_party_limits(world.uow, bank.id, 5, None))
    assert isinstance(too_many, InvalidInput)
    assert (too_many.reason, too_many.violations[0].field) == (
        "CITIZEN_RATE_LIMIT_INVALID",
        "citizen_rate_per_minute",
    )
    assert (await refused(set_party_limits(world.uow, bank.id, 0, 0))).reason == (
        "RATE_LIMIT_INVALID"
    )
    assert (await refused(set_party_limits(world.uow, "rp_nobody", 5, 5))).reason == (
        "PARTY_NOT_FOUND"
    )
