"""Password checks shared by Verify and SignIn, with a per-account throttle."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from eid_service.domain.account import Account
from eid_service.domain.errors import TooManyAttempts, Unavailable
from eid_service.domain.personal_id import parse_personal_id
from eid_service.store.uow import UnitOfWork
from eid_service.use_cases.context import (
    FAILED_PASSWORD_WINDOW,
    MAX_FAILED_PASSWORDS,
    UseCaseContext,
)

# Longer than one Argon2id check; a crashed check frees the slot after it.
CHECK_LEASE = timedelta(seconds=5)
# How long a check waits for the slot before the caller is told to retry.
CHECK_WAIT_SECONDS = 10.0
CHECK_POLL_SECONDS = 0.005
CHECK_POLL_MAX_SECONDS = 0.05


async def check_password(
    uow: UnitOfWork, ctx: UseCaseContext, personal_id: str, password: str, *, field: str
) -> tuple[Account | None, str | None]:
    """The account when the password is right, else None, plus the account id
    a failure is charged to (None for an unknown ID number).

    Checks of one account run one at a time (a lease on the account row), each
    after the previous one's outcome is recorded, so concurrent guesses cannot
    outrun the limit; a right password clears the count. Unknown ID numbers
    still cost one Argon2id verification, so response time does not tell
    whether an account exists. Returns in the write phase; the caller commits."""
    pid = parse_personal_id(personal_id, field=field)
    account = await uow.accounts.find_by_personal_id(pid.value)
    if account is None:
        await ctx.passwords.verify(None, password)
        await uow.start_writing()
        return None, None
    # Queue without a transaction open: waiting must not hold a pooled connection.
    await uow.commit()
    async with ctx.password_checks.hold(account.id):
        await _take_check_slot(uow, ctx, account.id)
        failures, last = await uow.accounts.failed_password_count(account.id)
        now = ctx.clock()
        if failures >= MAX_FAILED_PASSWORDS and last is not None:
            waited = now - last
            if waited < FAILED_PASSWORD_WINDOW:
                await uow.accounts.release_password_check(account.id)
                await uow.commit()
                retry_after = FAILED_PASSWORD_WINDOW - waited
                raise TooManyAttempts(
                    reason="TOO_MANY_FAILED_ATTEMPTS",
                    message="too many wrong passwords for this account; try again later",
                    metadata={"retry_after_seconds": str(int(retry_after.total_seconds()) + 1)},
                )
        await uow.commit_and_read()  # hold the slot, not the write turn, while hashing
        verified = await ctx.passwords.verify(account.password_hash, password)
        await uow.start_writing()
        await uow.accounts.end_password_check(
            account.id, failed_at=None if verified else ctx.clock()
        )
        return (account if verified else None), account.id


async def _take_check_slot(uow: UnitOfWork, ctx: UseCaseContext, account_id: str) -> None:
    loop = asyncio.get_running_loop()
    give_up = loop.time() + CHECK_WAIT_SECONDS
    poll = CHECK_POLL_SECONDS
    while True:
        await uow.start_writing()
        now = ctx.clock()
        if await uow.accounts.lease_password_check(account_id, now, now + CHECK_LEASE):
            return
        await uow.commit_and_read()
        if loop.time() > give_up:
            raise Unavailable(
                reason="ACCOUNT_BUSY", message="the account is being checked; retry shortly"
            )
        await asyncio.sleep(poll)
        poll = min(poll * 2, CHECK_POLL_MAX_SECONDS)
