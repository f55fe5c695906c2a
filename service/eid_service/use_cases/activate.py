"""Activate a PENDING account with its one-time code and set the password."""

from __future__ import annotations

from dataclasses import dataclass

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
    personal_id: str
    activation_code: str
    new_password: str


def _wrong_code() -> InvalidInput:
    return InvalidInput.of(
        "activation_code", "ACTIVATION_CODE_INVALID", "the activation code is not correct"
    )


async def activate(uow: UnitOfWork, ctx: UseCaseContext, cmd: ActivateCommand) -> Account:
    now = ctx.clock()
    v = Violations()
    pid = v.check(lambda: parse_personal_id(cmd.personal_id))
    code = v.check(lambda: parse_activation_code(cmd.activation_code))
    if pid is not None:
        v.check(lambda: check_new_password(cmd.new_password, personal_id=pid.value))
    v.raise_if_any()
    assert pid and code

    account = await uow.accounts.find_by_personal_id(pid.value)
    # An unknown account answers like a wrong code: no enumeration oracle.
    if account is None:
        raise _wrong_code()
    if account.state is not AccountState.PENDING:
        if await uow.activation_codes.any_consumed_matches(account.id, code):
            raise PreconditionFailed(
                reason="ACTIVATION_CODE_ALREADY_USED",
                message="this activation code has already been used",
            )
        account.activate("", now)  # raises the state's own reason

    record = await uow.activation_codes.latest_for(account.id)
    if record is None:
        raise _wrong_code()
    if record.attempts >= MAX_ACTIVATION_ATTEMPTS:
        raise TooManyAttempts(
            reason="ACTIVATION_ATTEMPTS_EXCEEDED",
            message="too many wrong codes; request a new activation code",
        )
    if now >= record.expires_at:
        raise PreconditionFailed(
            reason="ACTIVATION_CODE_EXPIRED",
            message="the activation code has expired; request a new one",
        )
    if not uow.activation_codes.matches(record, code):
        await uow.start_writing()
        await uow.activation_codes.count_wrong_attempt(record.id)
        await uow.commit()  # the wrong guess must count even though we fail
        raise _wrong_code()

    password_hash = await ctx.passwords.hash(cmd.new_password)
    await uow.start_writing()
    if not await uow.activation_codes.consume(record.id, now, MAX_ACTIVATION_ATTEMPTS):
        raise PreconditionFailed(
            reason="ACTIVATION_CODE_ALREADY_USED",
            message="this activation code has already been used",
        )
    account.activate(password_hash, now)
    if not await uow.accounts.mark_active(account):
        raise PreconditionFailed(
            reason="ACCOUNT_ALREADY_ACTIVE", message="the account is already active"
        )
    return account
