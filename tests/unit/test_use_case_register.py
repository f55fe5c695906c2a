"""Register: a PENDING account and an activation SMS, or nothing at all."""

from __future__ import annotations

from eid_service.domain.account import AccountLevel, AccountState
from eid_service.domain.activation import ACTIVATION_CODE_TTL
from eid_service.domain.errors import AlreadyExists, InvalidInput, PreconditionFailed
from tests.unit.use_case_kit import CHILD, LAN, MINH, STRANGER, World, refused


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


async def test_a_request_id_reused_for_other_data_is_refused(world: World) -> None:
    await world.register(LAN, request_id="reg-1")
    error = await refused(world.register(LAN, request_id="reg-1", email="lan@example.vn"))
    assert isinstance(error, InvalidInput) and error.reason == "REQUEST_ID_REUSED"
    assert _stored(world) == (1, 1, 1, 1)


async def test_one_request_id_names_one_anonymous_request(world: World) -> None:
    await world.register(LAN, request_id="reg-1")
    error = await refused(world.register(MINH, request_id="reg-1"))
    assert error.reason == "REQUEST_ID_REUSED"  # anonymous callers share one scope
    other = await world.register(MINH, request_id="reg-2")
    assert other.account.demographics.personal_id == MINH.personal_id
