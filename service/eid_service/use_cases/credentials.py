"""Password checks shared by Verify and SignIn (policy: domain/credential_policy.py).

Every check takes the same path whatever the ID number names (no account, a
PENDING, LOCKED or ACTIVE one): one transaction that counts the attempt
before the comparison, one Argon2id verification (against a dummy hash when
there is no password), one transaction that records the outcome. So neither
the answer, nor the number of hash runs, nor the number of database round
trips tells whether an account exists. Nothing is held between the two
transactions, and a check once sent to be counted runs to its outcome even
if its caller is cancelled (a right password takes its count back)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from eid_service.domain.account import AccountState
from eid_service.domain.errors import DomainError, InvalidInput, TooManyAttempts, Unauthenticated
from eid_service.domain.party import VerifyMode
from eid_service.domain.password_policy import MAX_PASSWORD_LENGTH
from eid_service.domain.personal_id import parse_personal_id
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.outliving import outliving
from eid_service.use_cases.ports import AuditEntry, Repositories, StoredCredential, UnitOfWork

T = TypeVar("T")
Outcome = TypeVar("Outcome")


@dataclass(frozen=True)
class PasswordCheck:
    credential: StoredCredential
    source: str
    verified: bool = field(default=False)

    def record_success(self, r: Repositories) -> None:
        r.attempts.succeeded(self.credential.subject, self.source)


def too_many_attempts(seconds: float) -> TooManyAttempts:
    return TooManyAttempts(
        reason="TOO_MANY_FAILED_ATTEMPTS",
        message="too many wrong passwords or codes from here for this ID number; try again later",
        metadata={"retry_after_seconds": str(int(seconds) + 1)},
    )


@contextlib.asynccontextmanager
async def one_check_at_a_time(
    ctx: UseCaseContext, personal_id: str, source: str
) -> AsyncIterator[None]:
    """Checks of one (ID number, source) queue in this process."""
    key = hashlib.sha256(f"{source}\x00{personal_id}".encode()).hexdigest()
    async with ctx.password_checks.hold(key):
        yield


async def check_password(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    personal_id: str,
    password: str,
    *,
    source: str,
    field_name: str,
    then: Callable[[PasswordCheck], Awaitable[Outcome]],
    before: Callable[[Repositories], T | None] = lambda _: None,
    mode: VerifyMode | None = None,
    on_wait: Callable[[Repositories, StoredCredential], None] = lambda *_: None,
) -> Outcome | T:
    """Takes a place among this process's password checks (admission.py;
    none free: PASSWORD_CHECKS_BUSY), counts the attempt, compares, and
    hands the check to `then` (which records the outcome). `before` runs
    first in the counting transaction; if it returns something (an earlier
    answer to replay), that is returned and nothing is counted or compared.
    With a Verify `mode`, the credential carries the citizen's lock on it
    (read in the same query). `on_wait` runs in the counting transaction
    when the source must wait (to audit the refusal).

    Once sent to be counted, the count, the comparison and `then` run to the
    end even if the caller goes away (a deadline, a cancelled call; the count
    may commit after that), and the caller's queue place
    (one_check_at_a_time) is held until they have: a right password always
    takes its count back before the next check counts, so cancelling a
    citizen's calls cannot lock them out."""
    pid = parse_personal_id(personal_id, field=field_name).value
    if len(password) > MAX_PASSWORD_LENGTH:
        # No password is this long: refused before any work, whoever the number names.
        raise InvalidInput.of(
            field_name.replace("personal_id", "password"),
            "PASSWORD_TOO_LONG",
            f"a password has at most {MAX_PASSWORD_LENGTH} characters",
        )
    admission = ctx.password_admission
    now = ctx.clock()

    def count(r: Repositories) -> tuple[T | None, StoredCredential | None, float]:
        earlier = before(r)
        if earlier is not None:
            return earlier, None, 0.0
        credential = r.accounts.credential(pid, mode)
        wait = r.attempts.reserve(credential.subject, source, now)
        if not wait:
            return None, credential, 0.0
        on_wait(r, credential)
        return None, credential, wait.total_seconds()

    async def count_compare_and_record() -> Outcome | T:
        # Before the account is looked up or the attempt counted: a refusal for
        # want of hash threads is the same for every ID number and costs no attempt.
        admission.enter(party=mode is not None)  # a mode: a relying party's Verify
        try:
            earlier, credential, wait = await uow.atomically(count)
        except BaseException:
            admission.leave()
            raise
        if earlier is not None or wait:
            admission.leave()
        if earlier is not None:
            return earlier
        assert credential is not None
        if wait:
            raise too_many_attempts(wait)
        # A PENDING account has no password yet; the dummy hash costs the same.
        usable = credential.password_hash if credential.state is not AccountState.PENDING else None
        try:
            verified = await ctx.passwords.verify(usable, password)
        finally:
            admission.leave()
        return await then(PasswordCheck(credential, source, verified))

    # One task from the count on: a counting transaction can commit after
    # its caller was cancelled (the database finishes what it was sent), so
    # the comparison that takes the count back must follow it whatever the
    # caller does.
    check = outliving(count_compare_and_record())
    try:
        return await asyncio.shield(check)
    except asyncio.CancelledError:
        # The caller left, the check goes on, and the caller's places (this
        # (ID number, source)'s queue, a party's gate) are held until it ends,
        # however often the caller is cancelled meanwhile: the next check
        # would find this one's count still standing and refuse a right password.
        while not check.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({check})
        raise


def invalid_credentials() -> Unauthenticated:
    return Unauthenticated(
        reason="INVALID_CREDENTIALS", message="the ID number or password is not correct"
    )


async def as_citizen(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    personal_id: str,
    password: str,
    *,
    source: str,
    field_name: str,
    action: str,
    then: Callable[[Repositories, PasswordCheck, datetime], T | DomainError],
    before: Callable[[Repositories], T | None] = lambda _: None,
) -> T:
    """A citizen proving who they are with ID number and password (SignIn,
    LockAccount, UnlockAccount). A wrong password is audited as `action`
    "rejected" and answered INVALID_CREDENTIALS, alike for every account; a
    right one takes its count back and runs `then` in the same transaction.
    A refusal `then` returns is committed with the rest, then raised."""

    async def record(check: PasswordCheck) -> T | DomainError | None:
        now = ctx.clock()
        cred = check.credential

        def work(r: Repositories) -> T | DomainError | None:
            if not check.verified:
                r.audit.append(
                    AuditEntry(cred.subject, cred.account_id, None, action, "rejected", now)
                )
                return None
            check.record_success(r)
            return then(r, check, now)

        return await uow.atomically(work)

    async with one_check_at_a_time(ctx, personal_id, source):
        done = await check_password(
            uow,
            ctx,
            personal_id,
            password,
            source=source,
            field_name=field_name,
            then=record,
            before=before,
        )
    if done is None:
        raise invalid_credentials()
    if isinstance(done, DomainError):
        raise done
    return done
