"""A citizen locks single Verify modes: a party that proves the credential is
told AUTH_MODE_LOCKED, any other party gets a wrong credential's answer,
RequestOtp sends nothing, and a temporary unlock locks again by itself."""

from __future__ import annotations

from datetime import timedelta

import pytest

from eid_service.domain.errors import InvalidInput, PreconditionFailed, Unauthenticated
from eid_service.domain.mode_locks import LOCKABLE_MODES, ModeState
from eid_service.domain.notices import NoticeKind
from eid_service.domain.party import RelyingParty, VerifyMode
from eid_service.use_cases.mode_locks import ModeLockChange, change_mode_lock, verify_mode_locks
from eid_service.use_cases.verified import Verification
from eid_service.use_cases.verify_demographic import DemographicCommand, verify_demographic
from eid_service.use_cases.verify_otp import OtpSent, request_otp, verify_one_time_code
from tests.unit.approval_kit import claim, collect, decide, pending, start
from tests.unit.test_use_case_verify_demographic import _lan_claim
from tests.unit.use_case_kit import (
    LAN,
    PASSWORD,
    STRANGER,
    WRONG_PASSWORD,
    World,
    as_seen,
    refused,
    unknown_id,
)

OTP = VerifyMode.ONE_TIME_CODE


async def _change(
    world: World,
    token: str | None,
    mode: VerifyMode | None,
    *,
    unlock: bool = False,
    minutes: float | None = None,
    request_id: str = "",
) -> list[ModeState]:
    change = ModeLockChange(mode, unlock, None if minutes is None else timedelta(minutes=minutes))
    reply = world.reply(list, "mode_lock", change, request_id)
    return await change_mode_lock(world.uow, world.ctx, token, change, reply)


async def _signed_in(world: World) -> str:
    await world.active(LAN)
    return (await world.sign_in(LAN)).tokens.access_token


async def _request_otp(world: World, party: RelyingParty, pid: str) -> OtpSent:
    reply = world.reply(OtpSent, "request_otp", pid, "")
    return await request_otp(world.uow, world.ctx, party, pid, reply)


async def _verify_otp(
    world: World, party: RelyingParty, code: str, request_id: str = ""
) -> Verification:
    pid = LAN.personal_id
    reply = world.reply(Verification, "verify", (pid, code), request_id)
    return await verify_one_time_code(world.uow, world.ctx, party, pid, code, None, reply)


def _codes_sent(world: World) -> int:
    return world.sent_to(LAN.phone).count(NoticeKind.VERIFY_CODE)


def _locked(states: list[ModeState]) -> set[VerifyMode]:
    return {s.mode for s in states if s.locked}


async def test_a_locked_mode_is_refused_to_who_proves_it_and_other_modes_work(
    world: World,
) -> None:
    token = await _signed_in(world)
    bank = world.party()
    assert _locked(await verify_mode_locks(world.uow, world.ctx, token)) == set()

    states = await _change(world, token, VerifyMode.PASSWORD)
    assert [s.mode for s in states] == list(LOCKABLE_MODES)
    assert _locked(states) == {VerifyMode.PASSWORD}

    locked = await refused(world.verify(bank, LAN.personal_id, PASSWORD, request_id="r-1"))
    assert isinstance(locked, PreconditionFailed)
    assert (locked.reason, locked.metadata) == ("AUTH_MODE_LOCKED", {"mode": "password"})
    # A retry is told the same, from the kept answer.
    again = await refused(world.verify(bank, LAN.personal_id, PASSWORD, request_id="r-1"))
    assert as_seen(again) == as_seen(locked)
    # A wrong password is just wrong, as it is for an unlocked mode.
    assert not (await world.verify(bank, LAN.personal_id, WRONG_PASSWORD)).verified
    # Another mode is not locked.
    await _request_otp(world, bank, LAN.personal_id)
    code = world.newest_code(LAN.phone, NoticeKind.VERIFY_CODE)
    assert (await _verify_otp(world, bank, code)).verified

    history = world.history(LAN)
    assert ("mode_lock.password", "locked", None) in history
    assert ("verify.password", "auth_mode_locked", bank.id) in history


async def test_request_otp_sends_nothing_for_a_locked_mode_and_answers_alike(
    world: World,
) -> None:
    token = await _signed_in(world)
    bank = world.party()
    await _change(world, token, OTP)

    locked = await _request_otp(world, bank, LAN.personal_id)
    unknown = await _request_otp(world, bank, unknown_id(7))
    assert locked == unknown
    assert _codes_sent(world) == 0
    assert world.history(LAN)[-1] == ("request_otp", "not_sent", bank.id)
    # No code exists, so every code is wrong, as for an unknown number.
    v = await _verify_otp(world, bank, "123456")
    assert not v.verified


async def test_a_code_sent_before_the_lock_is_told_the_lock(world: World) -> None:
    token = await _signed_in(world)
    bank = world.party()
    await _request_otp(world, bank, LAN.personal_id)
    code = world.newest_code(LAN.phone, NoticeKind.VERIFY_CODE)
    await _change(world, token, OTP)

    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert not (await _verify_otp(world, bank, wrong)).verified
    error = await refused(_verify_otp(world, bank, code))
    assert error.reason == "AUTH_MODE_LOCKED"


async def test_a_temporary_unlock_locks_again_by_itself(world: World) -> None:
    token = await _signed_in(world)
    bank = world.party()
    await _change(world, token, OTP)

    states = await _change(world, token, OTP, unlock=True, minutes=10)
    otp = next(s for s in states if s.mode is OTP)
    assert (otp.locked, otp.relocks_at) == (False, world.clock() + timedelta(minutes=10))
    await _request_otp(world, bank, LAN.personal_id)
    assert _codes_sent(world) == 1
    assert (await _verify_otp(world, bank, world.newest_code(LAN.phone))).verified

    world.clock.advance(timedelta(minutes=10))
    assert _locked(await verify_mode_locks(world.uow, world.ctx, token)) == {OTP}
    await _request_otp(world, bank, LAN.personal_id)
    assert _codes_sent(world) == 1
    assert world.history(LAN)[-1] == ("request_otp", "not_sent", bank.id)
    assert ("mode_lock.one_time_code", "unlocked_600s", None) in world.history(LAN)


async def test_a_temporary_unlock_of_an_open_mode_closes_it_afterwards(world: World) -> None:
    token = await _signed_in(world)
    await _change(world, token, VerifyMode.DEMOGRAPHIC, unlock=True, minutes=1)
    world.clock.advance(timedelta(seconds=59))
    assert _locked(await verify_mode_locks(world.uow, world.ctx, token)) == set()
    world.clock.advance(timedelta(seconds=1))
    assert _locked(await verify_mode_locks(world.uow, world.ctx, token)) == {VerifyMode.DEMOGRAPHIC}
    # Unlocked for good, and locking twice is no error.
    await _change(world, token, VerifyMode.DEMOGRAPHIC, unlock=True)
    await _change(world, token, VerifyMode.APPROVAL)
    states = await _change(world, token, VerifyMode.APPROVAL)
    assert _locked(states) == {VerifyMode.APPROVAL}


async def test_a_locked_demographic_mode_answers_as_a_wrong_claim(world: World) -> None:
    token = await _signed_in(world)
    bank = world.party()

    async def verify(claim_name: str) -> Verification:
        cmd = DemographicCommand(LAN.personal_id, _lan_claim(full_name=claim_name))
        reply = world.reply(Verification, "verify", cmd, "")
        return await verify_demographic(world.uow, world.ctx, bank, cmd, reply)

    wrong = await verify("Nguyễn Thị Hoa")
    await _change(world, token, VerifyMode.DEMOGRAPHIC)
    true_but_locked = await verify("Nguyễn Thị Lan")
    assert not true_but_locked.verified
    assert true_but_locked.demographic is not None and wrong.demographic is not None
    assert true_but_locked.demographic.name == wrong.demographic.name  # NO_MATCH
    assert true_but_locked.demographic.matched is False
    assert world.history(LAN)[-1] == ("verify.demographic", "auth_mode_locked", bank.id)


async def test_a_replayed_change_is_answered_alike_and_applied_once(world: World) -> None:
    token = await _signed_in(world)
    first = await _change(world, token, OTP, request_id="lock-1")
    await _change(world, token, OTP, unlock=True)
    replayed = await _change(world, token, OTP, request_id="lock-1")
    assert replayed == first
    assert _locked(await verify_mode_locks(world.uow, world.ctx, token)) == set()


@pytest.mark.parametrize(
    ("mode", "unlock", "minutes", "reason"),
    [
        (VerifyMode.QR_SHARE, False, None, "MODE_NOT_LOCKABLE"),
        (None, False, None, "MODE_UNSPECIFIED"),
        (OTP, True, 0.5, "UNLOCK_DURATION_OUT_OF_RANGE"),
        (OTP, True, 24 * 60 + 1, "UNLOCK_DURATION_OUT_OF_RANGE"),
    ],
)
async def test_bad_changes_are_refused_with_their_reason(
    world: World, mode: VerifyMode | None, unlock: bool, minutes: float | None, reason: str
) -> None:
    token = await _signed_in(world)
    error = await refused(_change(world, token, mode, unlock=unlock, minutes=minutes))
    assert isinstance(error, InvalidInput)
    assert error.reason == reason


async def test_changes_need_a_live_session(world: World) -> None:
    token = await _signed_in(world)
    assert isinstance(await refused(_change(world, None, OTP)), Unauthenticated)
    await world.sign_out(token)
    error = await refused(_change(world, token, OTP))
    assert error.reason == "SESSION_INVALID"
    assert (await refused(verify_mode_locks(world.uow, world.ctx, token))).reason == (
        "SESSION_INVALID"
    )


async def test_a_locked_approval_mode_shows_the_citizen_no_prompt(world: World) -> None:
    token = await _signed_in(world)
    bank = world.party()
    await _change(world, token, VerifyMode.APPROVAL)

    started = await start(world, bank, LAN)
    stranger = await start(world, bank, STRANGER)
    assert (len(started.code), started.token) == (len(stranger.code), stranger.token)
    assert (await pending(world, token)).approvals == []
    assert world.history(LAN)[-1] == ("approval.started", "not_shown", bank.id)

    await _change(world, token, VerifyMode.APPROVAL, unlock=True, minutes=5)
    await start(world, bank, LAN)
    assert len((await pending(world, token)).approvals) == 1


async def test_prompts_from_before_an_approval_lock_are_hidden_and_cannot_be_used(
    world: World,
) -> None:
    """A lock stops a flood of prompts already queued too: they are not
    listed, cannot be approved or claimed (only declined), and one approved
    before the lock is not collected (the party is told why, as after a
    right code)."""
    token = await _signed_in(world)
    bank = world.party()
    queued = await start(world, bank, LAN)
    approved = await start(world, bank, LAN)
    await decide(world, token, approved.approval_id, approved.code)
    scanned = await start(world, bank)  # the QR variant, for anyone who scans it
    await _change(world, token, VerifyMode.APPROVAL)

    assert (await pending(world, token)).approvals == []
    error = await refused(decide(world, token, queued.approval_id, queued.code))
    assert isinstance(error, PreconditionFailed) and error.reason == "AUTH_MODE_LOCKED"
    assert (await refused(claim(world, token, scanned.token))).reason == "AUTH_MODE_LOCKED"
    collected = await refused(collect(world, bank, approved.approval_id))
    assert collected.reason == "AUTH_MODE_LOCKED"
    assert ("verify.approval", "auth_mode_locked", bank.id) in world.history(LAN)
    # Declining stays open: it releases nothing.
    declined = await decide(world, token, queued.approval_id, approve=False)
    assert declined.status.value == "declined"
    # Unlocked again, the prompts still pending show.
    await _change(world, token, VerifyMode.APPROVAL, unlock=True)
    assert (await claim(world, token, scanned.token)).request.account_id is not None
