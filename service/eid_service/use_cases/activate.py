"""Activate a PENDING account with its one-time code and set the password."""

from __future__ import annotations

from dataclasses import dataclass, field

from eid_service.domain.account import Account, AccountState
from eid_service.domain.activation import MAX_ACTIVATION_ATTEMPTS, parse_activation_code
from eid_service.domain.errors import InvalidInput, PreconditionFailed, TooManyAttempts
from eid_service.domain.password_policy import check_new_password
from eid_service.domain.personal_id import parse_personal_id
from eid_service.store.uow import UnitOfWork
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.validation import Violations


@dataclass(frozen=True)
class ActivateCommand:
    personal_id: str = field(repr=False)
    activation_code: str = field(repr=False)
    new_password: str = field(repr=False)


def _wrong_code() -> InvalidInput:
    return InvalidInput.of(
        "activation_code", "ACTIVATION_CODE_INVALID", "the activation code is not correct"
    )


def _already_used() -> PreconditionFailed:
    return PreconditionFailed(
        reason="ACTIVATION_CODE_ALREADY_USED", message="this activation code has already been used"
    )


async def activate(uow: UnitOfWork, ctx: UseCaseContext, cmd: ActivateCommand) -> Account:
    """Without the right code every account answers ACTIVATION_CODE_INVALID (or
    ACTIVATION_ATTEMPTS_EXCEEDED), so Activate tells nobody whether an ID number
    has an account or in which state; reasons about the state come only with
    the right code."""
    now = ctx.clock()
    v = Violations()
    pid = v.check(lambda: parse_personal_id(cmd.personal_id))
    code = v.check(lambda: parse_activation_code(cmd.activation_code))
    if pid is not None:
        v.check(lambda: check_new_password(cmd.new_password, personal_id=pid.value))
    v.raise_if_any()
    assert pid and code

    account = await uow.accounts.find_by_personal_id(pid.value)
    if account is None:
        raise _wrong_code()
    if account.state is not AccountState.PENDING:
        if await uow.activation_codes.any_consumed_matches(account.id, code):
            raise _already_used()
        raise _wrong_code()
    record = await uow.activation_codes.latest_for(account.id)
    if record is None:
        raise _wrong_code()

    # Count the attempt before comparing, atomically, and keep the count.
    await uow.start_writing()
    if not await uow.activation_codes.reserve_attempt(record.id, MAX_ACTIVATION_ATTEMPTS):
        fresh = await uow.activation_codes.latest_for(account.id)
        used = fresh is not None and fresh.consumed_at is not None
        if used and uow.activation_codes.matches(record, code):
            raise _already_used()
        raise TooManyAttempts(
            reason="ACTIVATION_ATTEMPTS_EXCEEDED",
            message="too many wrong codes; request a new activation code",
        )
    await uow.commit_and_read()
    if not uow.activation_codes.matches(record, code):
        raise _wrong_code()
    if now >= record.expires_at:
        raise PreconditionFailed(
            reason="ACTIVATION_CODE_EXPIRED",
            message="the activation code has expired; request a new one",
        )

    password_hash = await ctx.passwords.hash(cmd.new_password)
    await uow.start_writing()
    if not await uow.activation_codes.consume(record.id, now):
        raise _already_used()  # a concurrent call with the same code got there first
    account.activate(password_hash, now)
    if not await uow.accounts.mark_active(account):
        raise _already_used()
    return account
