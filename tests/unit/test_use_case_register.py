"""Register: a PENDING account and an activation SMS, or nothing at all."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from eid_service.domain.account import AccountLevel, AccountState
from eid_service.domain.activation import ACTIVATION_CODE_TTL
from eid_service.domain.citizen import Demographics, Gender
from eid_service.domain.errors import (
    AlreadyExists,
    InvalidInput,
    PreconditionFailed,
    TooManyAttempts,
)
from eid_service.domain.personal_id import make_personal_id
from eid_service.domain.rate_limits import Limit, SendLimits
from tests.unit.use_case_kit import (
    CHILD,
    CITIZEN_IP,
    LAN,
    MINH,
    STRANGER,
    STRANGER_IP,
    Citizen,
    World,
    as_seen,
    refused,
)

HOUR, DAY = timedelta(hours=1), timedelta(days=1)
# A third adult in the registry, for the per-phone limits.
HUNG = Citizen(
    Demographics(
        make_personal_id("001", date(1978, 8, 8), Gender.MALE, 55501).value,
        "Đỗ Mạnh Hùng",
        date(1978, 8, 8),
        Gender.MALE,
    ),
    "0905555555",
)


def _stored(world: World) -> tuple[int, int, int, int]:
    """Accounts, activation codes, outbox messages and audit events stored."""
    s = world.uow.state
    events = sum(len(chain) for chain in s.audit_events.values())
    return len(s.accounts), len(s.codes), len(s.outbox), events


async def test_registering_creates_a_pending_account_and_sends_a_code(world: World) -> None:
    done = await world.register(LAN)

    account = done.account
    assert account.state is AccountState.PENDING
    assert account.level is AccountLevel.LEVEL_1
    assert account.password_hash is None
    assert account.phone == "+84912345678"
    assert (done.channel, done.masked_destination) == ("sms", "+84 *** *** 678")
    assert done.code_expires_at == world.clock() + ACTIVATION_CODE_TTL
    stored = world.uow.run_now(lambda r: r.accounts.find_by_personal_id(LAN.personal_id))
    assert stored == account

    (message,) = world.uow.state.outbox.values()
    assert (message.channel, message.destination) == ("sms", "+84912345678")
    code = world.activation_code(LAN)
    assert message.notice is not None and code in message.notice.body
    record = world.uow.run_now(lambda r: r.activation_codes.latest_for(account.id))
    assert record is not None and world.uow.run_now(
        lambda r: r.activation_codes.matches(record, code)
    )
    assert (record.attempts, record.consumed_at) == (0, None)

    assert world.history(LAN) == [("register", "ok", None)]
    assert world.chain_intact(LAN)


async def test_the_registry_spelling_of_the_name_is_kept(world: World) -> None:
    done = await world.register(LAN, full_name="  nguyễn   THỊ lan ")
    assert done.account.demographics.full_name == "Nguyễn Thị Lan"


async def test_data_that_differ_from_the_registry_create_nothing(world: World) -> None:
    error = await refused(world.register(LAN, birth_date="1990-05-18"))
    assert isinstance(error, PreconditionFailed) and error.reason == "REGISTRY_MISMATCH"
    error = await refused(world.register(LAN, full_name="Nguyễn Thị Lâm"))
    assert error.reason == "REGISTRY_MISMATCH"
    assert _stored(world) == (0, 0, 0, 0)


async def test_an_id_number_missing_from_the_registry_is_answered_as_a_mismatch(
    world: World,
) -> None:
    """Register does not tell who is in the population registry."""
    missing = await refused(world.register(STRANGER))
    mismatch = await refused(world.register(LAN, birth_date="1990-05-18"))
    assert type(missing) is type(mismatch) is PreconditionFailed
    assert (missing.reason, missing.message) == (mismatch.reason, mismatch.message)
    assert _stored(world) == (0, 0, 0, 0)


async def test_registering_again_while_pending_points_to_resend(world: World) -> None:
    await world.register(LAN)
    before = _stored(world)
    error = await refused(world.register(LAN, phone_number="0987000111"))
    assert isinstance(error, AlreadyExists) and error.reason == "ACCOUNT_PENDING"
    assert "ResendActivationCode" in error.message
    assert _stored(world) == before


async def test_a_second_account_for_an_active_one_is_refused(world: World) -> None:
    await world.active(LAN)
    before = _stored(world)
    error = await refused(world.register(LAN, phone_number="0987000111"))
    assert isinstance(error, AlreadyExists) and error.reason == "ACCOUNT_ALREADY_EXISTS"
    assert _stored(world) == before


async def test_a_child_cannot_register_and_nothing_is_read_or_written(world: World) -> None:
    error = await refused(world.register(CHILD))
    assert isinstance(error, PreconditionFailed) and error.reason == "AGE_BELOW_MINIMUM"
    assert world.uow.transactions == 0


async def test_every_malformed_field_is_reported_at_once_before_any_transaction(
    world: World,
) -> None:
    error = await refused(
        world.register(LAN, phone_number="12345", email="not-an-email", birth_date="17/05/1990")
    )
    assert isinstance(error, InvalidInput) and error.reason == "INVALID_FIELDS"
    assert {v.field for v in error.violations} == {"phone_number", "email", "birth_date"}
    assert world.uow.transactions == 0


async def test_a_retry_with_the_same_request_id_gets_the_same_answer(world: World) -> None:
    first = await world.register(LAN, request_id="reg-1")
    again = await world.register(LAN, request_id="reg-1")

    assert again == first
    assert _stored(world) == (1, 1, 1, 1)  # one account, one code, one SMS, one event


async def test_a_request_id_reused_for_other_data_is_another_request(world: World) -> None:
    """Anonymous calls are scoped by their content: other data under the same
    id is a new Register, refused on its own merits, with no second effect."""
    await world.register(LAN, request_id="reg-1")
    error = await refused(world.register(LAN, request_id="reg-1", email="lan@example.vn"))
    assert error.reason == "ACCOUNT_PENDING"
    assert _stored(world) == (1, 1, 1, 1)


async def test_a_request_id_is_scoped_to_the_person_it_registers(world: World) -> None:
    """Anonymous callers cannot be told apart, the people they name can: one
    person's request id does not spoil another's registration."""
    first = await world.register(LAN, request_id="reg-1")
    other = await world.register(MINH, request_id="reg-1")
    assert other.account.demographics.personal_id == MINH.personal_id
    assert await world.register(LAN, request_id="reg-1") == first


# ---- limits -----------------------------------------------------------------


def _limited(per_source: int = 20, per_phone: int = 3) -> World:
    world = World(
        SendLimits(
            register_per_source=Limit("register-source", per_source, HOUR),
            register_per_phone=Limit("register-phone", per_phone, DAY),
        )
    )
    world.enrol(HUNG)
    return world


def _account_of(world: World, citizen: Citizen) -> bool:
    pid = citizen.personal_id
    return world.uow.run_now(lambda r: r.accounts.exists(pid))


async def test_a_source_may_register_only_so_often_and_probes_count() -> None:
    world = _limited(per_source=2)
    await refused(world.register(STRANGER, source=STRANGER_IP))  # a probe: REGISTRY_MISMATCH
    await world.register(LAN, source=STRANGER_IP)

    error = await refused(world.register(MINH, source=STRANGER_IP))

    assert isinstance(error, TooManyAttempts) and error.reason == "TOO_MANY_REQUESTS"
    wait = int(error.metadata["retry_after_seconds"])
    assert 0 < wait <= HOUR.total_seconds() + 1
    assert not _account_of(world, MINH)
    assert _stored(world) == (1, 1, 1, 1)  # LAN's account, code, SMS and event only
    await world.register(MINH, source=CITIZEN_IP)  # another source is not slowed
    world.clock.advance(timedelta(seconds=wait))
    await world.register(HUNG, source=STRANGER_IP)


async def test_a_source_over_its_limit_learns_nothing_about_the_registry() -> None:
    world = _limited(per_source=1)
    await refused(world.register(STRANGER, source=STRANGER_IP))

    unknown = await refused(world.register(STRANGER, source=STRANGER_IP))
    known = await refused(world.register(LAN, source=STRANGER_IP))

    assert unknown.reason == "TOO_MANY_REQUESTS"
    assert as_seen(unknown) == as_seen(known)
    assert not _account_of(world, LAN)


async def test_registrations_sending_to_one_phone_are_limited() -> None:
    world = _limited(per_phone=2)
    await world.register(LAN, phone_number="0977000111")
    await world.register(MINH, phone_number="+84 977 000 111")  # the same phone, written otherwise

    error = await refused(world.register(HUNG, phone_number="0977000111"))

    assert isinstance(error, TooManyAttempts) and error.reason == "TOO_MANY_REQUESTS"
    assert not _account_of(world, HUNG)
    assert len(world.uow.state.outbox) == 2
    await world.register(HUNG)  # to its own phone


async def test_only_registrations_that_send_count_against_the_phone() -> None:
    """A mismatch or a pending account sends nothing, so it cannot use up a
    phone's budget (a stranger cannot stop a citizen's registration)."""
    world = _limited(per_phone=1)
    for _ in range(3):
        await refused(world.register(STRANGER, phone_number=LAN.phone, source=STRANGER_IP))
        await refused(world.register(LAN, birth_date="1990-05-18", source=STRANGER_IP))

    await world.register(LAN)
    pending = await refused(world.register(LAN))
    assert pending.reason == "ACCOUNT_PENDING"
    assert len(world.uow.state.outbox) == 1


async def test_a_retry_with_the_same_request_id_is_not_counted_again() -> None:
    world = _limited(per_source=1)
    first = await world.register(LAN, request_id="reg-1", source=STRANGER_IP)

    again = await world.register(LAN, request_id="reg-1", source=STRANGER_IP)
    assert again == first
    error = await refused(world.register(MINH, source=STRANGER_IP))
    assert error.reason == "TOO_MANY_REQUESTS"
    assert _stored(world) == (1, 1, 1, 1)


async def test_by_default_three_registrations_a_day_may_send_to_one_phone(world: World) -> None:
    """A household sharing one phone fits; a fourth account to it waits a day."""
    born = HUNG.demographics.birth_date
    thu = Citizen(
        replace(HUNG.demographics, personal_id=make_personal_id("079", born, Gender.MALE, 1).value),
        HUNG.phone,
    )
    world.enrol(HUNG, thu)
    for citizen in (LAN, MINH, HUNG):
        await world.register(citizen, phone_number="0977000111")

    fourth = await refused(world.register(thu, phone_number="0977000111"))

    assert fourth.reason == "TOO_MANY_REQUESTS"
    world.clock.advance(DAY)
    await world.register(thu, phone_number="0977000111")
