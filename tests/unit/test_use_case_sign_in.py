"""SignIn: a session for the right password; wrong guesses slow down only their source."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from eid_service.domain.account import AccountState
from eid_service.domain.credential_policy import (
    MAX_FAILURES_PER_SOURCE,
    SOURCE_WINDOW,
    SUBJECT_CEILING,
)
from eid_service.domain.errors import DomainError, TooManyAttempts, Unauthenticated
from eid_service.use_cases.ports import Repositories
from eid_service.use_cases.sessions import ACCESS_TTL, REFRESH_TTL
from tests.unit.use_case_kit import (
    LAN,
    MINH,
    PASSWORD,
    STRANGER,
    WRONG_PASSWORD,
    Cost,
    World,
    as_seen,
    cancelled_once_counted,
    refused,
)

STRANGER_IP = "ip:203.0.113.66"
CITIZEN_IP = "ip:192.0.2.1"


async def _fail(world: World, personal_id: str, times: int, source: str = STRANGER_IP) -> None:
    for _ in range(times):
        error = await refused(world.sign_in(personal_id, WRONG_PASSWORD, source=source))
        assert error.reason == "INVALID_CREDENTIALS"


async def test_the_right_password_opens_a_session(world: World) -> None:
    account = await world.active(LAN)
    done = await world.sign_in(LAN, PASSWORD)

    assert done.account == account
    assert done.tokens.access_expires_at == world.clock() + ACCESS_TTL
    token = done.tokens.access_token
    live = world.uow.run_now(lambda r: r.sessions.by_access_token(token, world.clock()))
    assert live is not None and live[0].account_id == live[1].id == account.id
    assert done.tokens.refresh_expires_at == world.clock() + REFRESH_TTL
    assert world.history(LAN)[-1] == ("sign_in", "ok", None)


async def test_a_retry_under_its_request_id_gets_the_first_session_unchecked(
    world: World,
) -> None:
    await world.active(LAN)
    first = await world.sign_in(LAN, PASSWORD, request_id="rid-1")
    compared = world.passwords.verifications

    again = await world.sign_in(LAN, PASSWORD, request_id="rid-1")

    assert again == first
    assert world.passwords.verifications == compared
    assert len(world.uow.state.sessions) == 1
    assert [h for h in world.history(LAN) if h[0] == "sign_in"] == [("sign_in", "ok", None)]


async def test_a_request_id_sent_with_another_password_finds_nothing(world: World) -> None:
    await world.active(LAN)
    await world.sign_in(LAN, PASSWORD, request_id="rid-1")

    error = await refused(
        world.sign_in(LAN, WRONG_PASSWORD, request_id="rid-1", source=STRANGER_IP)
    )

    assert error.reason == "INVALID_CREDENTIALS"
    assert len(world.uow.state.sessions) == 1


async def test_a_wrong_password_is_refused_and_audited(world: World) -> None:
    await world.active(LAN)
    error = await refused(world.sign_in(LAN, WRONG_PASSWORD))

    assert isinstance(error, Unauthenticated) and error.reason == "INVALID_CREDENTIALS"
    assert world.history(LAN)[-1] == ("sign_in", "rejected", None)
    assert world.uow.state.sessions == {}


async def _answer_and_cost(world: World, personal_id: str) -> tuple[object, Cost]:
    before = world.cost()
    error = await refused(world.sign_in(personal_id, WRONG_PASSWORD))
    return as_seen(error), world.cost() - before


async def test_unknown_pending_and_wrong_password_look_and_cost_the_same(world: World) -> None:
    await world.register(MINH)  # PENDING
    await world.active(LAN)

    unknown = await _answer_and_cost(world, STRANGER.personal_id)
    pending = await _answer_and_cost(world, MINH.personal_id)
    wrong = await _answer_and_cost(world, LAN.personal_id)

    assert unknown == pending == wrong
    assert unknown[1] == Cost(hashes=0, verifications=1, writes=2, reads=0)


@pytest.mark.parametrize("cancels", [1, 2])
async def test_right_passwords_cancelled_once_counted_do_not_lock_the_citizen_out(
    world: World, monkeypatch: pytest.MonkeyPatch, cancels: int
) -> None:
    """A deadline can land after the attempt is counted but before the caller
    hears it was (and the server's deadline cap a second time): the check
    still compares and takes its count back before the caller returns."""
    await world.active(LAN)
    for _ in range(MAX_FAILURES_PER_SOURCE + 1):
        call = world.sign_in(LAN, PASSWORD)
        await cancelled_once_counted(world, call, monkeypatch, cancels=cancels)
        assert all(row.failures == 0 for row in world.uow.state.attempts.values())

    assert (await world.sign_in(LAN, PASSWORD)).account.state is AccountState.ACTIVE


async def test_a_check_cancelled_before_it_starts_holds_no_place(world: World) -> None:
    """As when the server shuts down: every task cancelled, the check's own
    before its first step. No place among the password checks stays taken."""
    await world.active(LAN)
    caller = asyncio.ensure_future(world.sign_in(LAN, PASSWORD))
    await asyncio.sleep(0)  # the caller hands its check to a task of its own
    for task in asyncio.all_tasks() - {asyncio.current_task()}:
        task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert world.ctx.password_admission.admitted == 0


async def test_a_pending_account_cannot_sign_in_with_any_password(world: World) -> None:
    await world.register(LAN)
    error = await refused(world.sign_in(LAN, PASSWORD))
    assert error.reason == "INVALID_CREDENTIALS"


async def test_a_stranger_can_never_lock_a_citizen_out(world: World) -> None:
    await world.active(LAN)
    await _fail(world, LAN.personal_id, MAX_FAILURES_PER_SOURCE)

    throttled = await refused(world.sign_in(LAN, PASSWORD, source=STRANGER_IP))
    assert isinstance(throttled, TooManyAttempts)
    assert throttled.reason == "TOO_MANY_FAILED_ATTEMPTS"
    retry_after = int(throttled.metadata["retry_after_seconds"])
    assert SOURCE_WINDOW.total_seconds() <= retry_after <= SOURCE_WINDOW.total_seconds() + 1

    done = await world.sign_in(LAN, PASSWORD, source=CITIZEN_IP)
    assert done.account.demographics.personal_id == LAN.personal_id


async def test_a_throttled_source_is_not_checked_at_all(world: World) -> None:
    await world.active(LAN)
    await _fail(world, LAN.personal_id, MAX_FAILURES_PER_SOURCE)
    before = world.cost()
    await refused(world.sign_in(LAN, PASSWORD, source=STRANGER_IP))
    assert world.cost() - before == Cost(hashes=0, verifications=0, writes=1, reads=0)


async def test_an_unknown_id_number_is_throttled_exactly_like_a_real_one(world: World) -> None:
    await world.active(LAN)
    await _fail(world, LAN.personal_id, MAX_FAILURES_PER_SOURCE)
    await _fail(world, STRANGER.personal_id, MAX_FAILURES_PER_SOURCE)

    real = await refused(world.sign_in(LAN, WRONG_PASSWORD, source=STRANGER_IP))
    unknown = await refused(world.sign_in(STRANGER.personal_id, WRONG_PASSWORD, source=STRANGER_IP))

    assert real.reason == "TOO_MANY_FAILED_ATTEMPTS"
    assert as_seen(unknown) == as_seen(real)


async def test_the_throttled_source_may_try_again_once_the_window_has_passed(
    world: World,
) -> None:
    await world.active(LAN)
    await _fail(world, LAN.personal_id, MAX_FAILURES_PER_SOURCE)
    world.clock.advance(timedelta(minutes=5))
    throttled = await refused(world.sign_in(LAN, PASSWORD, source=STRANGER_IP))
    wait = int(throttled.metadata["retry_after_seconds"])
    assert 600 <= wait <= 601

    world.clock.advance(timedelta(seconds=wait))
    await world.sign_in(LAN, PASSWORD, source=STRANGER_IP)


async def test_the_right_password_starts_the_source_count_again(world: World) -> None:
    await world.active(LAN)
    await _fail(world, LAN.personal_id, MAX_FAILURES_PER_SOURCE - 1, source=CITIZEN_IP)
    await world.sign_in(LAN, PASSWORD, source=CITIZEN_IP)

    await _fail(world, LAN.personal_id, MAX_FAILURES_PER_SOURCE - 1, source=CITIZEN_IP)
    await world.sign_in(LAN, PASSWORD, source=CITIZEN_IP)


async def test_under_a_distributed_attack_a_fresh_source_still_signs_in(world: World) -> None:
    """Past the subject's ceiling each source gets one try; the citizen's
    own device, which has not failed, still gets in."""
    await world.active(LAN)
    subject = world.uow.run_now(lambda r: r.accounts.credential(LAN.personal_id).subject)

    def botnet(r: Repositories) -> None:
        for i in range(SUBJECT_CEILING + 1):
            assert r.attempts.reserve(subject, f"ip:bot{i}", world.clock()) is None

    world.uow.run_now(botnet)

    await _fail(world, LAN.personal_id, 1, source="ip:bot-new")
    error = await refused(world.sign_in(LAN, PASSWORD, source="ip:bot-new"))
    assert error.reason == "TOO_MANY_FAILED_ATTEMPTS"
    await world.sign_in(LAN, PASSWORD, source=CITIZEN_IP)


async def test_a_locked_account_with_the_right_password_is_told_it_is_locked(
    world: World,
) -> None:
    await world.active(LAN)
    world.set_state(LAN, AccountState.LOCKED)

    locked = await refused(world.sign_in(LAN, PASSWORD))
    wrong = await refused(world.sign_in(LAN, WRONG_PASSWORD))

    assert locked.reason == "ACCOUNT_LOCKED"
    assert wrong.reason == "INVALID_CREDENTIALS"
    assert world.uow.state.sessions == {}


async def test_a_malformed_id_number_is_refused_before_any_transaction(world: World) -> None:
    error = await refused(world.sign_in("12345", PASSWORD))
    assert isinstance(error, DomainError) and error.reason == "PERSONAL_ID_MALFORMED"
    assert world.cost() == Cost(0, 0, 0, 0)
