"""Activate: the one-time code sets the first password, and guessing it is limited."""

from __future__ import annotations

from datetime import timedelta

from eid_service.domain.account import AccountState
from eid_service.domain.activation import (
    ACTIVATION_CODE_TTL,
    MAX_ACTIVATION_ATTEMPTS,
    MAX_ACTIVATION_CODE_GUESSES,
)
from eid_service.domain.errors import InvalidInput, PreconditionFailed, TooManyAttempts
from eid_service.use_cases.ports import ActivationCodeRecord
from tests.unit.use_case_kit import LAN, PASSWORD, STRANGER, World, as_seen, refused

STRANGER_IP = "ip:203.0.113.66"


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def _record(world: World) -> ActivationCodeRecord:
    account = world.uow.run_now(lambda r: r.accounts.find_by_personal_id(LAN.personal_id))
    assert account is not None
    record = world.uow.run_now(lambda r: r.activation_codes.latest_for(account.id))
    assert record is not None
    return record


async def test_the_right_code_activates_the_account_with_the_new_password(world: World) -> None:
    await world.register(LAN)
    account = await world.activate(LAN)

    assert account.state is AccountState.ACTIVE
    assert account.activated_at == world.clock()
    assert world.passwords.hashes == 1
    assert (await world.sign_in(LAN, PASSWORD)).account.id == account.id
    assert world.history(LAN)[:2] == [("register", "ok", None), ("activate", "ok", None)]


async def test_a_wrong_code_is_refused_and_counted(world: World) -> None:
    await world.register(LAN)
    error = await refused(world.activate(LAN, _wrong(world.activation_code(LAN))))

    assert isinstance(error, InvalidInput) and error.reason == "ACTIVATION_CODE_INVALID"
    assert _record(world).attempts == 1
    assert world.passwords.hashes == 0


async def test_five_wrong_codes_slow_their_source_not_the_citizen(world: World) -> None:
    """Before, 5 wrong guesses from anywhere spent the citizen's code, again
    after every new one: anyone who knew the ID number kept the account from
    being activated (noticed by an attacker's pass)."""
    await world.register(LAN)
    code = world.activation_code(LAN)
    for _ in range(MAX_ACTIVATION_ATTEMPTS):
        wrong = world.activate(LAN, _wrong(code), source=STRANGER_IP)
        assert (await refused(wrong)).reason == "ACTIVATION_CODE_INVALID"

    for guess in (_wrong(code), code):  # the right code too: the source must wait
        error = await refused(world.activate(LAN, guess, source=STRANGER_IP))
        assert isinstance(error, TooManyAttempts) and error.reason == "TOO_MANY_FAILED_ATTEMPTS"
    assert (await world.activate(LAN, code)).state is AccountState.ACTIVE


async def test_a_code_dies_after_a_hundred_wrong_guesses_from_many_sources(
    world: World,
) -> None:
    await world.register(LAN)
    code = world.activation_code(LAN)
    for n in range(MAX_ACTIVATION_CODE_GUESSES):
        source = f"ip:198.51.100.{n // MAX_ACTIVATION_ATTEMPTS}"
        await refused(world.activate(LAN, _wrong(code), source=source))

    for guess in (_wrong(code), code):
        error = await refused(world.activate(LAN, guess))
        assert isinstance(error, TooManyAttempts)
        assert error.reason == "ACTIVATION_ATTEMPTS_EXCEEDED"
    assert _record(world).attempts == MAX_ACTIVATION_CODE_GUESSES
    assert world.uow.run_now(lambda r: r.accounts.credential(LAN.personal_id)).state is (
        AccountState.PENDING
    )
    assert world.passwords.hashes == 0


async def test_four_wrong_codes_still_leave_the_right_one_working(world: World) -> None:
    await world.register(LAN)
    code = world.activation_code(LAN)
    for _ in range(MAX_ACTIVATION_ATTEMPTS - 1):
        await refused(world.activate(LAN, _wrong(code)))
    assert (await world.activate(LAN, code)).state is AccountState.ACTIVE


async def test_an_expired_code_is_refused_and_the_account_stays_pending(world: World) -> None:
    await world.register(LAN)
    world.clock.advance(ACTIVATION_CODE_TTL)

    error = await refused(world.activate(LAN))
    assert isinstance(error, PreconditionFailed) and error.reason == "ACTIVATION_CODE_EXPIRED"
    assert _record(world).consumed_at is None
    assert world.uow.run_now(lambda r: r.accounts.credential(LAN.personal_id)).state is (
        AccountState.PENDING
    )


async def test_a_code_just_before_expiry_still_works(world: World) -> None:
    await world.register(LAN)
    world.clock.advance(ACTIVATION_CODE_TTL - timedelta(seconds=1))
    assert (await world.activate(LAN)).state is AccountState.ACTIVE


async def test_a_used_code_is_refused_as_already_used(world: World) -> None:
    await world.register(LAN)
    code = world.activation_code(LAN)
    await world.activate(LAN, code)

    error = await refused(world.activate(LAN, code, password="another long passphrase"))
    assert isinstance(error, PreconditionFailed) and error.reason == "ACTIVATION_CODE_ALREADY_USED"
    await world.sign_in(LAN, PASSWORD)  # the first password still holds


async def test_a_retry_with_the_same_request_id_gets_the_first_answer_for_free(
    world: World,
) -> None:
    await world.register(LAN)
    first = await world.activate(LAN, request_id="act-1")
    attempts, hashes = _record(world).attempts, world.passwords.hashes

    again = await world.activate(LAN, request_id="act-1")

    assert again == first
    assert _record(world).attempts == attempts == 1
    assert world.passwords.hashes == hashes == 1


async def test_another_password_under_the_same_request_id_changes_nothing(
    world: World,
) -> None:
    """Calls without credentials are scoped by their content: the same id with
    another password is another request, refused on its own merits (the code
    is spent), and the first password stands."""
    await world.register(LAN)
    first = await world.activate(LAN, request_id="act-1")
    error = await refused(
        world.activate(LAN, password="a different passphrase", request_id="act-1")
    )
    assert error.reason == "ACTIVATION_CODE_ALREADY_USED"
    assert await world.activate(LAN, request_id="act-1") == first


async def test_without_the_right_code_no_account_state_is_revealed(world: World) -> None:
    """An unknown ID number, a PENDING, an ACTIVE and a LOCKED account all
    answer a wrong code the same way."""
    unknown = await refused(world.activate(STRANGER, "123456"))

    await world.register(LAN)
    pending = await refused(world.activate(LAN, _wrong(world.activation_code(LAN))))
    await world.activate(LAN)
    active = await refused(world.activate(LAN, _wrong(world.activation_code(LAN))))
    world.set_state(LAN, AccountState.LOCKED)
    locked = await refused(world.activate(LAN, _wrong(world.activation_code(LAN))))

    assert as_seen(unknown)[1] == "ACTIVATION_CODE_INVALID"
    assert as_seen(unknown) == as_seen(pending) == as_seen(active) == as_seen(locked)


async def test_a_bad_code_or_password_is_refused_before_any_transaction(world: World) -> None:
    await world.register(LAN)
    before = world.uow.transactions

    malformed = await refused(world.activate(LAN, "12a456"))
    short = await refused(world.activate(LAN, password="short"))
    with_id = await refused(world.activate(LAN, password=f"my id is {LAN.personal_id}"))

    assert malformed.reason == "ACTIVATION_CODE_MALFORMED"
    assert short.reason == "PASSWORD_TOO_SHORT"
    assert with_id.reason == "PASSWORD_TOO_WEAK"
    assert world.uow.transactions == before
    assert _record(world).attempts == 0
