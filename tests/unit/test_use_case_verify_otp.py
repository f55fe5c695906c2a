"""Verify by one-time code: RequestOtp sends a code naming the party to the
registered phone; the code verifies once, for that party only."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from eid_client.receipts import verify_receipt
from eid_service.domain.account import AccountState
from eid_service.domain.errors import InvalidInput, PermissionDenied, TooManyAttempts
from eid_service.domain.notices import NoticeKind
from eid_service.domain.party import RelyingParty, VerifyMode
from eid_service.domain.share import Attribute
from eid_service.use_cases.verified import Verification
from eid_service.use_cases.verify_otp import OTP_TTL, OtpSent, request_otp, verify_one_time_code
from tests.unit.use_case_kit import LAN, MINH, STRANGER, World, unknown_id

A = Attribute


async def _request(world: World, party: RelyingParty, pid: str, request_id: str = "") -> OtpSent:
    reply = world.reply(OtpSent, "request_otp", pid, request_id)
    return await request_otp(world.uow, world.ctx, party, pid, reply)


async def _verify(
    world: World,
    party: RelyingParty,
    pid: str,
    code: str,
    *,
    requested: frozenset[Attribute] | None = None,
    request_id: str = "",
) -> Verification:
    reply = world.reply(Verification, "verify", (pid, code, requested), request_id)
    return await verify_one_time_code(world.uow, world.ctx, party, pid, code, requested, reply)


def _sms_codes(world: World) -> list[str]:
    return [
        m.notice.body
        for m in world.uow.state.outbox.values()
        if m.notice is not None and m.notice.kind is NoticeKind.VERIFY_CODE
    ]


async def test_the_code_sent_to_the_registered_phone_verifies_once(world: World) -> None:
    await world.active(LAN)
    bank = world.party("Ngân hàng A", frozenset({A.FULL_NAME, A.BIRTH_DATE}))

    sent = await _request(world, bank, LAN.personal_id)
    assert sent.expires_at == world.clock() + OTP_TTL
    assert world.sent_to(LAN.phone)[-1] is NoticeKind.VERIFY_CODE
    body = _sms_codes(world)[-1]
    assert "Ngân hàng A" in body  # the citizen sees who asks
    code = world.newest_code(LAN.phone, NoticeKind.VERIFY_CODE)

    v = await _verify(world, bank, LAN.personal_id, code)
    assert (v.verified, v.method) == (True, VerifyMode.ONE_TIME_CODE)
    assert v.released == {A.FULL_NAME: "Nguyễn Thị Lan", A.BIRTH_DATE: "1990-05-17"}
    assert v.subject.startswith("sub_")
    claims = verify_receipt(v.receipt, (await world.keys()).verification_keys, audience=bank.id)
    assert (claims.subject, claims.mode, claims.verification_id) == (
        v.subject,
        "one_time_code",
        v.verification_id,
    )
    assert claims.attributes == ("birth_date", "full_name")

    again = await _verify(world, bank, LAN.personal_id, code)
    assert not again.verified  # single use
    assert world.history(LAN)[-2:] == [
        ("verify.one_time_code", "verified", bank.id),
        ("verify.one_time_code", "rejected", bank.id),
    ]


async def test_a_retry_with_the_request_id_gets_the_same_answer(world: World) -> None:
    await world.active(LAN)
    bank = world.party()
    await _request(world, bank, LAN.personal_id)
    code = world.newest_code(LAN.phone, NoticeKind.VERIFY_CODE)

    first = await _verify(world, bank, LAN.personal_id, code, request_id="r-1")
    retry = await _verify(world, bank, LAN.personal_id, code, request_id="r-1")

    assert first.verified and retry == first


async def test_a_code_works_only_for_the_party_that_asked_for_it(world: World) -> None:
    await world.active(LAN)
    bank, telco = world.party("Bank"), world.party("Telco")
    await _request(world, bank, LAN.personal_id)
    code = world.newest_code(LAN.phone, NoticeKind.VERIFY_CODE)

    assert not (await _verify(world, telco, LAN.personal_id, code)).verified
    assert (await _verify(world, bank, LAN.personal_id, code)).verified


async def test_five_wrong_guesses_void_the_code(world: World) -> None:
    await world.active(LAN)
    bank = world.party()
    await _request(world, bank, LAN.personal_id)
    code = world.newest_code(LAN.phone, NoticeKind.VERIFY_CODE)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"

    for _ in range(5):
        assert not (await _verify(world, bank, LAN.personal_id, wrong)).verified
    assert not (await _verify(world, bank, LAN.personal_id, code)).verified


async def test_an_expired_code_does_not_verify(world: World) -> None:
    await world.active(LAN)
    bank = world.party()
    await _request(world, bank, LAN.personal_id)
    code = world.newest_code(LAN.phone, NoticeKind.VERIFY_CODE)

    world.clock.advance(OTP_TTL + timedelta(seconds=1))
    assert not (await _verify(world, bank, LAN.personal_id, code)).verified


async def test_request_otp_tells_nothing_about_who_has_an_account(world: World) -> None:
    await world.active(LAN)
    await world.register(MINH)  # pending
    bank = world.party()
    sent_before = len(world.uow.state.outbox)

    answers = [
        await _request(world, bank, pid)
        for pid in (unknown_id(1), MINH.personal_id, STRANGER.personal_id)
    ]

    assert {a.expires_at for a in answers} == {world.clock() + OTP_TTL}
    assert len(world.uow.state.outbox) == sent_before  # nothing sent
    assert world.history(MINH)[-1] == ("request_otp", "not_sent", bank.id)


async def test_a_locked_account_is_not_sent_a_code(world: World) -> None:
    await world.active(LAN)
    world.set_state(LAN, AccountState.LOCKED)
    bank = world.party()

    await _request(world, bank, LAN.personal_id)

    assert NoticeKind.VERIFY_CODE not in world.sent_to(LAN.phone)


async def test_one_code_a_minute_per_party_and_citizen(world: World) -> None:
    await world.active(LAN)
    bank, telco = world.party("Bank"), world.party("Telco")
    await _request(world, bank, LAN.personal_id)

    with pytest.raises(TooManyAttempts) as refused:
        await _request(world, bank, LAN.personal_id)
    assert refused.value.reason == "TOO_MANY_REQUESTS"
    assert int(refused.value.metadata["retry_after_seconds"]) <= 61
    await _request(world, telco, LAN.personal_id)  # another party is not held up

    world.clock.advance(timedelta(minutes=1))
    await _request(world, bank, LAN.personal_id)


async def test_a_daily_ceiling_per_citizen_holds_over_all_parties(world: World) -> None:
    await world.active(LAN)
    limits = world.ctx.send_limits
    per_party = limits.otp_per_party_citizen_day.hits
    parties = [world.party(f"Party {i}") for i in range(limits.otp_per_citizen.hits // per_party)]
    for _ in range(per_party):
        for party in parties:
            await _request(world, party, LAN.personal_id)
        world.clock.advance(timedelta(minutes=1))

    with pytest.raises(TooManyAttempts) as refused:
        await _request(world, world.party("One too many"), LAN.personal_id)
    assert refused.value.reason == "TOO_MANY_REQUESTS"


async def test_one_party_cannot_spend_the_citizens_day_for_the_others(world: World) -> None:
    """Before, one party asking a code a minute (its own limit) locked the
    citizen out of codes at every party for the day after ten minutes
    (found by an attacker's pass)."""
    await world.active(LAN)
    hostile, bank = world.party("Hostile"), world.party("Bank")
    for _ in range(world.ctx.send_limits.otp_per_party_citizen_day.hits):
        await _request(world, hostile, LAN.personal_id)
        world.clock.advance(timedelta(minutes=1))

    with pytest.raises(TooManyAttempts) as refused:
        await _request(world, hostile, LAN.personal_id)
    assert refused.value.reason == "TOO_MANY_REQUESTS"
    assert int(refused.value.metadata["retry_after_seconds"]) > 3600  # its day is spent
    sent = await _request(world, bank, LAN.personal_id)
    assert sent.expires_at > world.clock()


async def test_a_party_without_the_mode_is_refused(world: World) -> None:
    await world.active(LAN)
    bank = replace(world.party(), modes=frozenset({VerifyMode.QR_SHARE}))

    for attempt in (
        _request(world, bank, LAN.personal_id),
        _verify(world, bank, LAN.personal_id, "123456"),
    ):
        with pytest.raises(PermissionDenied) as refused:
            await attempt
        assert refused.value.reason == "MODE_NOT_ALLOWED"


@pytest.mark.parametrize("code", ["12345", "1234567", "12a456", "", "١٢٣٤٥٦"])
async def test_a_malformed_code_is_invalid_input(world: World, code: str) -> None:
    bank = world.party()
    with pytest.raises(InvalidInput) as refused:
        await _verify(world, bank, LAN.personal_id, code)
    assert refused.value.reason == "ONE_TIME_CODE_MALFORMED"


async def test_asking_for_a_scope_beyond_the_party_is_refused(world: World) -> None:
    await world.active(LAN)
    bank = world.party("Bank", frozenset({A.FULL_NAME}))
    with pytest.raises(PermissionDenied) as refused:
        await _verify(world, bank, LAN.personal_id, "123456", requested=frozenset({A.PERSONAL_ID}))
    assert refused.value.reason == "SCOPE_NOT_ALLOWED"


async def test_requested_scopes_narrow_what_is_released(world: World) -> None:
    await world.active(LAN)
    bank = world.party("Bank", frozenset(Attribute))
    await _request(world, bank, LAN.personal_id)
    code = world.newest_code(LAN.phone, NoticeKind.VERIFY_CODE)

    v = await _verify(world, bank, LAN.personal_id, code, requested=frozenset({A.GENDER}))

    assert v.released == {A.GENDER: "female"}
