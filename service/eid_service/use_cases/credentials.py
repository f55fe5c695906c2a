"""Password checks shared by Verify and SignIn, with a per-account throttle."""

from __future__ import annotations

from eid_service.domain.account import Account
from eid_service.domain.errors import TooManyAttempts
from eid_service.domain.personal_id import parse_personal_id
from eid_service.store.uow import UnitOfWork
from eid_service.use_cases.context import (
    FAILED_PASSWORD_WINDOW,
    MAX_FAILED_PASSWORDS,
    UseCaseContext,
)


async def check_password(
    uow: UnitOfWork, ctx: UseCaseContext, personal_id: str, password: str, *, field: str
) -> tuple[Account | None, str | None]:
    """The account when the password is right, else None, plus the account id
    a failure is charged to (None for an unknown ID number).

    Unknown ID numbers still cost one Argon2 verification, so response time
    does not tell whether an account exists. The caller commits."""
    now = ctx.clock()
    pid = parse_personal_id(personal_id, field=field)
    account = await uow.accounts.find_by_personal_id(pid.value)
    failures = 0
    if account is not None:
        failures, last = await uow.accounts.failed_password_count(account.id)
        if failures >= MAX_FAILED_PASSWORDS and last and now - last < FAILED_PASSWORD_WINDOW:
            retry_after = FAILED_PASSWORD_WINDOW - (now - last)
            raise TooManyAttempts(
                reason="TOO_MANY_FAILED_ATTEMPTS",
                message="too many wrong passwords for this account; try again later",
                metadata={"retry_after_seconds": str(int(retry_after.total_seconds()) + 1)},
            )
    stored = account.password_hash if account is not None else None
    verified = await ctx.passwords.verify(stored, password)
    # Argon2id is done: only now join the writers (callers write the outcome).
    await uow.start_writing()
    if not verified:
        if account is not None:
            await uow.accounts.record_failed_password(account.id, now)
        return None, None if account is None else account.id
    assert account is not None
    if failures:
        await uow.accounts.clear_failed_passwords(account.id)
    return account, account.id
