"""Verify by password: `verified` true or false, never a hint why; limited per party."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from eid_service.domain.account import AccountLevel, AccountState
from eid_service.domain.credential_policy import MAX_FAILURES_PER_SOURCE
from eid_service.domain.errors import DomainError, PreconditionFailed, TooManyAttempts
from eid_service.domain.party import RelyingParty, VerifyMode
from eid_service.domain.share import Attribute
from eid_service.use_cases.context import MAX_PARTY_FAILURES, PARTY_FAILURE_WINDOW
from eid_service.use_cases.verified import Verification
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
    unknown_id,
)

A = Attribute


def _as_seen(v: Verification) -> tuple[object, ...]:
    """What a party learns, apart from the per-event verification id."""
    return v.verified, v.method, v.at, v.level, v.released


async def _fail(world: World, party: RelyingParty, personal_id: str, times: int) -> None:
    for _ in range(times):
        assert not (await world.verify(party, personal_id, WRONG_PASSWORD)).verified


async def test_the_right_password_verifies_and_releases_the_party_scopes(world: World) -> None:
    await world.active(LAN)
    bank = world.party("Bank", frozenset({A.FULL_NAME, A.BIRTH_DATE}))

    v = await world.verify(bank, LAN.personal_id, PASSWORD)

    assert (v.verified, v.method, v.level) == (True, VerifyMode.PASSWORD, AccountLevel.LEVEL_1)
    assert v.released == {A.FULL_NAME: "Nguyễn Thị Lan", A.BIRTH_DATE: "1990-05-17"}
    assert v.verification_id
    assert world.history(LAN)[-1] == ("verify.password", "verified", bank.id)


async def test_a_wrong_password_is_an_answer_not_an_error(world: World) -> None:
    await world.active(LAN)
    bank = world.party()

    v = await world.verify(bank, LAN.personal_id, WRONG_PASSWORD)

    assert (v.verified, v.level, v.released) == (False, None, {})
    assert world.history(LAN)[-1] == ("verify.password", "rejected", bank.id)


async def _answer_and_cost(world: World, party: RelyingParty, pid: str) -> tuple[object, Cost]:
    before = world.cost()
    v = await world.verify(party, pid, WRONG_PASSWORD)
    return _as_seen(v), world.cost() - before


async def test_unknown_pending_and_wrong_password_look_and_cost_the_same(world: World) -> None:
    await world.register(MINH)
    await world.active(LAN)
    bank = world.party()
    await world.keys()  # the signing keys are read once per cache lifetime, not per call

    unknown = await _answer_and_cost(world, bank, STRANGER.personal_id)
    pending = await _answer_and_cost(world, bank, MINH.personal_id)
    wrong = await _answer_and_cost(world, bank, LAN.personal_id)

    assert unknown == pending == wrong
    assert unknown[1] == Cost(hashes=0, verifications=1, writes=2, reads=0)


async def test_a_pending_account_is_not_verified_and_a_locked_one_says_so_only_to_its_password(
    world: World,
) -> None:
    bank = world.party()
    await world.register(LAN)
    assert not (await world.verify(bank, LAN.personal_id, PASSWORD)).verified
    await world.activate(LAN)
    world.set_state(LAN, AccountState.LOCKED)
    guessed = await world.verify(bank, LAN.personal_id, WRONG_PASSWORD)
    assert _as_seen(guessed)[:2] == (False, VerifyMode.PASSWORD)
    assert guessed.released == {}
    locked = await refused(world.verify(bank, LAN.personal_id, PASSWORD, request_id="v-locked"))
    assert isinstance(locked, PreconditionFailed) and locked.reason == "ACCOUNT_LOCKED"
    # Kept as the request id's answer.
    again = await refused(world.verify(bank, LAN.personal_id, PASSWORD, request_id="v-locked"))
    assert again.reason == "ACCOUNT_LOCKED"


async def test_a_party_that_guesses_cannot_lock_the_citizen_out(world: World) -> None:
    await world.active(LAN)
    guesser, bank = world.party("Guesser"), world.party("Bank")
    await _fail(world, guesser, LAN.personal_id, MAX_FAILURES_PER_SOURCE)

    throttled = await refused(world.verify(guesser, LAN.personal_id, PASSWORD))
    assert isinstance(throttled, TooManyAttempts)
    assert throttled.reason == "TOO_MANY_FAILED_ATTEMPTS"
    assert 900 <= int(throttled.metadata["retry_after_seconds"]) <= 901

    assert (await world.verify(bank, LAN.personal_id, PASSWORD)).verified


async def test_an_unknown_id_number_is_throttled_exactly_like_a_real_one(world: World) -> None:
    await world.active(LAN)
    guesser = world.party("Guesser")
    await _fail(world, guesser, LAN.personal_id, MAX_FAILURES_PER_SOURCE)
    await _fail(world, guesser, STRANGER.personal_id, MAX_FAILURES_PER_SOURCE)

    real = await refused(world.verify(guesser, LAN.personal_id, WRONG_PASSWORD))
    unknown = await refused(world.verify(guesser, STRANGER.personal_id, WRONG_PASSWORD))

    assert real.reason == "TOO_MANY_FAILED_ATTEMPTS"
    assert as_seen(unknown) == as_seen(real)


async def test_a_burst_of_concurrent_guesses_cannot_outrun_the_count(world: World) -> None:
    await world.active(LAN)
    guesser = world.party("Guesser")

    outcomes = await asyncio.gather(
        *(world.verify(guesser, LAN.personal_id, WRONG_PASSWORD) for _ in range(12)),
        return_exceptions=True,
    )

    answered = [o for o in outcomes if isinstance(o, Verification)]
    throttled = [o for o in outcomes if isinstance(o, DomainError)]
    assert len(answered) == MAX_FAILURES_PER_SOURCE
    assert {e.reason for e in throttled} == {"TOO_MANY_FAILED_ATTEMPTS"}
    assert len(throttled) == 12 - MAX_FAILURES_PER_SOURCE


async def test_the_party_may_try_again_once_the_window_has_passed(world: World) -> None:
    await world.active(LAN)
    guesser = world.party("Guesser")
    await _fail(world, guesser, LAN.personal_id, MAX_FAILURES_PER_SOURCE)
    throttled = await refused(world.verify(guesser, LAN.personal_id, PASSWORD))

    world.clock.advance(timedelta(seconds=int(throttled.metadata["retry_after_seconds"])))
    assert (await world.verify(guesser, LAN.personal_id, PASSWORD)).verified


async def test_the_right_password_starts_the_party_count_again(world: World) -> None:
    await world.active(LAN)
    bank = world.party()
    for _ in range(3):
        await _fail(world, bank, LAN.personal_id, MAX_FAILURES_PER_SOURCE - 1)
        assert (await world.verify(bank, LAN.personal_id, PASSWORD)).verified


async def test_a_party_with_too_many_failures_is_paused_for_the_minute(world: World) -> None:
    await world.active(LAN)
    scraper, bank = world.party("Scraper"), world.party("Bank")
    per_id = MAX_FAILURES_PER_SOURCE
    for serial in range(MAX_PARTY_FAILURES // per_id):
        await _fail(world, scraper, unknown_id(serial), per_id)

    before = world.cost()
    paused = await refused(world.verify(scraper, LAN.personal_id, PASSWORD))
    assert isinstance(paused, TooManyAttempts) and paused.reason == "PARTY_THROTTLED"
    assert paused.metadata["retry_after_seconds"] == "60"
    assert world.cost() - before == Cost(hashes=0, verifications=0, writes=1, reads=0)
    assert (await world.verify(bank, LAN.personal_id, PASSWORD)).verified

    world.clock.advance(PARTY_FAILURE_WINDOW)
    assert (await world.verify(scraper, LAN.personal_id, PASSWORD)).verified


async def test_failures_straddling_a_minute_boundary_still_pause_the_party(world: World) -> None:
    """The window slides: a burst split across a clock minute is one burst."""
    await world.active(LAN)
    scraper = world.party("Scraper")
    world.clock.advance(timedelta(seconds=58))  # START is on a whole minute
    per_id = MAX_FAILURES_PER_SOURCE
    for serial in range(MAX_PARTY_FAILURES // per_id):
        await _fail(world, scraper, unknown_id(serial), per_id)
        world.clock.advance(timedelta(milliseconds=200))  # the burst crosses 09:01:00
    paused = await refused(world.verify(scraper, LAN.personal_id, PASSWORD))
    assert paused.reason == "PARTY_THROTTLED"


async def test_a_retry_with_the_same_request_id_replays_without_checking_again(
    world: World,
) -> None:
    await world.active(LAN)
    guesser = world.party("Guesser")
    first = await world.verify(guesser, LAN.personal_id, WRONG_PASSWORD, request_id="v-1")
    before = world.cost()

    retries = [
        await world.verify(guesser, LAN.personal_id, WRONG_PASSWORD, request_id="v-1")
        for _ in range(2 * MAX_FAILURES_PER_SOURCE)
    ]

    assert retries == [first] * len(retries)  # same verification id too
    assert (world.cost() - before).verifications == 0
    assert world.history(LAN).count(("verify.password", "rejected", guesser.id)) == 1
    assert (await world.verify(guesser, LAN.personal_id, PASSWORD)).verified


async def test_a_request_id_reused_for_another_password_is_refused(world: World) -> None:
    await world.active(LAN)
    bank = world.party()
    await world.verify(bank, LAN.personal_id, WRONG_PASSWORD, request_id="v-1")
    error = await refused(world.verify(bank, LAN.personal_id, PASSWORD, request_id="v-1"))
    assert error.reason == "REQUEST_ID_REUSED"


async def test_request_ids_are_scoped_to_the_party(world: World) -> None:
    await world.active(LAN)
    one, two = world.party("One"), world.party("Two")
    assert not (await world.verify(one, LAN.personal_id, WRONG_PASSWORD, request_id="v-1")).verified
    assert (await world.verify(two, LAN.personal_id, PASSWORD, request_id="v-1")).verified


@pytest.mark.parametrize("cancels", [1, 2])
async def test_right_passwords_cancelled_once_counted_still_verify_afterwards(
    world: World, monkeypatch: pytest.MonkeyPatch, cancels: int
) -> None:
    """A party's deadline landing just after the count committed does not
    leave a failure standing against the citizen."""
    await world.active(LAN)
    bank = world.party()
    for _ in range(MAX_FAILURES_PER_SOURCE + 1):
        call = world.verify(bank, LAN.personal_id, PASSWORD)
        await cancelled_once_counted(world, call, monkeypatch, cancels=cancels)
        assert all(row.failures == 0 for row in world.uow.state.attempts.values())

    assert (await world.verify(bank, LAN.personal_id, PASSWORD)).verified
    assert [e[1] for e in world.history(LAN)[-2:]] == ["verified", "verified"]
