"""Activate a PENDING account with its one-time code and set the password."""

from __future__ import annotations

from dataclasses import dataclass, field

from eid_service.domain.account import NO_ACCOUNT, Account, AccountState
from eid_service.domain.activation import (
    MAX_ACTIVATION_CODE_GUESSES,
    RECENT_ACCOUNT_CODES,
    CodePurpose,
    parse_activation_code,
)
from eid_service.domain.errors import (
    DomainError,
    InvalidInput,
    PreconditionFailed,
    TooManyAttempts,
)
from eid_service.domain.password_policy import check_new_password
from eid_service.domain.personal_id import parse_personal_id
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.credentials import too_many_attempts
from eid_service.use_cases.dependants import finish_take_over
from eid_service.use_cases.ports import (
    ActivationCodeRecord,
    AuditEntry,
    Repositories,
    Subject,
    UnitOfWork,
)
from eid_service.use_cases.replies import Answer, Reply, once
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


def _exceeded() -> TooManyAttempts:
    return TooManyAttempts(
        reason="ACTIVATION_ATTEMPTS_EXCEEDED",
        message="too many wrong codes; request a new activation code",
    )


def _expired() -> PreconditionFailed:
    return PreconditionFailed(
        reason="ACTIVATION_CODE_EXPIRED",
        message="the activation code has expired; request a new one",
    )


def _sent_code_matching(
    r: Repositories, recent: list[ActivationCodeRecord], code: str
) -> ActivationCodeRecord | None:
    """The one of the account's newest codes that `code` is, newest first; a
    code used ends the ones sent before it."""
    for record in recent:
        if record.consumed_at is not None:
            return None
        if r.activation_codes.matches(record, code):
            return record
    return None


@dataclass(frozen=True)
class _RightCode:
    record: ActivationCodeRecord
    subject: Subject


async def activate(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    cmd: ActivateCommand,
    reply: Reply[Account, Answer],
    *,
    source: str,
) -> Answer:
    """Without the right code every account answers ACTIVATION_CODE_INVALID (or
    ACTIVATION_ATTEMPTS_EXCEEDED), so Activate tells nobody whether an ID number
    has an account or in which state; reasons about the state come only with
    the right code. Any of the account's RECENT_ACCOUNT_CODES newest codes
    works, each until its own expiry: a code anyone who knows the ID number
    and the phone had resent does not void the one the citizen is typing
    (before, only the newest worked). Each `source` (the client's address) may guess as it may
    at passwords (shared with them): failures slow that source, and the code
    itself outlasts far more guesses than one source may make.

    A wrong code is counted in the transaction that compares it; the right one
    is counted when it is consumed, after the new password is hashed (outside
    any transaction). Concurrent duplicates of one request id thus never spend
    attempts: they get the first call's answer."""
    now = ctx.clock()
    caller = reply.content_scope()
    v = Violations()
    pid = v.check(lambda: parse_personal_id(cmd.personal_id))
    code = v.check(lambda: parse_activation_code(cmd.activation_code))
    if pid is not None:
        v.check(lambda: check_new_password(cmd.new_password, personal_id=pid.value))
    v.raise_if_any()
    assert pid and code

    def check_code(r: Repositories) -> Answer | _RightCode | DomainError:
        earlier = reply.replay(r, caller)
        if earlier is not None:
            return earlier
        account = r.accounts.credential(pid.value)
        # Counted as failed until the code proves right, whoever the number names.
        wait = r.attempts.reserve(account.subject, source, now)
        if wait is not None:
            return too_many_attempts(wait.total_seconds())
        pending = account.account_id is not None and account.state is AccountState.PENDING
        owner = account.account_id if pending and account.account_id else NO_ACCOUNT
        # The same statements whoever the number names (no account, pending,
        # active): before, an unknown number ran two fewer than a number
        # with an account, which told them apart by time.
        recent = r.activation_codes.recent_for(owner, CodePurpose.ACTIVATION, RECENT_ACCOUNT_CODES)
        right = _sent_code_matching(r, recent, code)
        if right is None:
            # Counted (and committed) before the caller hears it was wrong.
            counted = r.activation_codes.count_wrong_guess_on_recent(
                owner, CodePurpose.ACTIVATION, RECENT_ACCOUNT_CODES, MAX_ACTIVATION_CODE_GUESSES
            )
            if r.activation_codes.any_consumed_matches(account.account_id or NO_ACCOUNT, code):
                return _already_used()
            if recent and counted == 0:
                return _exceeded()  # every code still usable is out of guesses
            return _wrong_code()
        if right.attempts >= MAX_ACTIVATION_CODE_GUESSES:
            return _exceeded()
        if now >= right.expires_at:
            return _expired()
        # Taken back at once: a duplicate of this request nets nothing either.
        r.attempts.succeeded(account.subject, source)
        return _RightCode(right, account.subject)

    def check_and_keep_refusal(r: Repositories) -> Answer | _RightCode | DomainError:
        checked = check_code(r)
        if isinstance(checked, DomainError):
            return reply.refuse(r, caller, checked, now)
        return checked

    checked = await once(uow, reply, caller, check_and_keep_refusal)
    if isinstance(checked, DomainError):
        raise checked
    if not isinstance(checked, _RightCode):
        return checked
    record = checked.record
    password_hash = await ctx.password_admission.hold_through(ctx.passwords.hash(cmd.new_password))
    now = ctx.clock()

    def consume(r: Repositories) -> Answer | DomainError:
        earlier = reply.replay(r, caller)
        if earlier is not None:
            return earlier
        if not r.activation_codes.consume(record.id, now, MAX_ACTIVATION_CODE_GUESSES):
            # Used meanwhile (by a duplicate of this request: replay it), out
            # of attempts or expired.
            earlier = reply.replay(r, caller)
            if earlier is not None:
                return earlier
            fresh = next(
                (
                    c
                    for c in r.activation_codes.recent_for(
                        record.account_id, CodePurpose.ACTIVATION, RECENT_ACCOUNT_CODES
                    )
                    if c.id == record.id
                ),
                None,
            )
            if fresh is not None and fresh.consumed_at is not None:
                # Kept as this request's answer: a copy re-sent (a client
                # retrying across a crash) gets it again instead of counting
                # a failed attempt for its source each time (a crash test saw
                # TOO_MANY_FAILED_ATTEMPTS on such a copy).
                return reply.refuse(r, caller, _already_used(), now)
            if fresh is not None and fresh.attempts >= MAX_ACTIVATION_CODE_GUESSES:
                raise _exceeded()
            raise _expired()
        account = r.accounts.get(record.account_id)
        assert account is not None
        account.activate(password_hash, now)
        if not r.accounts.mark_active(account):
            raise _already_used()
        r.audit.append(AuditEntry(checked.subject, account.id, None, "activate", "ok", now))
        # A child taking over the account a guardian registered: the guardian's part ends.
        finish_take_over(r, ctx, checked.subject, account.id, now)
        return reply.finish(r, caller, account, now)

    done = await once(uow, reply, caller, consume)
    if isinstance(done, DomainError):
        raise done
    return done
