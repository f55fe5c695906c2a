"""Lock an account (a lost phone) and unlock it again.

A citizen locks from any device: signed in, with ID number and password, or
with ID number and a code sent to the registered phone. Locking ends every
session and every unredeemed QR share in the same transaction, and tells
the registered phone and email. Unlocking takes a registration officer who
has seen the citizen in person, or the citizen with an unlock code and the
password. Nothing about an account's state is told to a caller who has not
proved the password or a code."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from eid_service.domain.account import Account, AccountState, citizen_deceased
from eid_service.domain.activation import (
    MAX_LOCK_CODE_ATTEMPTS,
    CodePurpose,
    parse_activation_code,
)
from eid_service.domain.errors import (
    DomainError,
    NotFound,
    PreconditionFailed,
)
from eid_service.domain.notices import NoticeKind, state_notice
from eid_service.domain.officer import Officer, OfficerRole
from eid_service.domain.personal_id import parse_personal_id
from eid_service.use_cases.auth import citizen_session, session_missing
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.credentials import PasswordCheck, as_citizen, too_many_attempts
from eid_service.use_cases.officer_auth import (
    officer_caller,
    officer_key_invalid,
    officer_replay,
    officer_with_role,
)
from eid_service.use_cases.one_time_codes import code_invalid, spend_recent_code
from eid_service.use_cases.ports import AuditEntry, Repositories, Subject, UnitOfWork
from eid_service.use_cases.replies import Answer, Caller, Reply, answer_once, session_scope
from eid_service.use_cases.status_events import StatusChange, publish_status_change
from eid_service.use_cases.validation import Violations

# Why locking ended a session.
_LOCKED_SESSIONS = "account_locked"


class LockProof(Enum):
    SESSION = "session"
    PASSWORD = "password"  # noqa: S105 (a kind of proof, not a secret)
    ONE_TIME_CODE = "one_time_code"


@dataclass(frozen=True)
class LockCommand:
    proof: LockProof
    access_token: str = field(repr=False, default="")
    personal_id: str = field(repr=False, default="")
    password: str = field(repr=False, default="")
    one_time_code: str = field(repr=False, default="")


@dataclass(frozen=True)
class StateChange:
    """The account after the call; `changed` is False when it already was so."""

    account: Account
    changed: bool


def _account(r: Repositories, account_id: str) -> Account:
    account = r.accounts.get(account_id)
    assert account is not None
    return account


def _notify(
    r: Repositories, account: Account, kind: NoticeKind, ctx: UseCaseContext, now: datetime
) -> None:
    notice = state_notice(kind, ctx.language)
    r.outbox.add("sms", account.phone, notice, now)
    if account.email:
        r.outbox.add("email", account.email, notice, now)


def _lock(
    r: Repositories,
    ctx: UseCaseContext,
    subject: Subject,
    account_id: str,
    proof: LockProof,
    now: datetime,
) -> StateChange | DomainError:
    if r.accounts.lock(account_id, now):
        r.sessions.revoke_all(account_id, now, _LOCKED_SESSIONS)
        r.shares.revoke_all(account_id, now)
        # What the lost device shared for the citizen's dependants ends too.
        r.shares.revoke_issued_by(account_id, now)
        account = _account(r, account_id)
        _notify(r, account, NoticeKind.ACCOUNT_LOCKED, ctx, now)
        publish_status_change(r, account_id, StatusChange.LOCKED, now)
        r.audit.append(AuditEntry(subject, account_id, None, "lock", f"ok_{proof.value}", now))
        return StateChange(account, changed=True)
    account = _account(r, account_id)
    if account.state is AccountState.LOCKED:
        return StateChange(account, changed=False)
    if account.state is AccountState.DEACTIVATED:
        return citizen_deceased()
    return PreconditionFailed(
        reason="ACCOUNT_NOT_ACTIVE", message="the account has not been activated yet"
    )


async def lock_account(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    cmd: LockCommand,
    reply: Reply[StateChange, Answer],
    *,
    source: str,
) -> Answer:
    now = ctx.clock()
    if cmd.proof is LockProof.SESSION:
        return await _lock_signed_in(uow, ctx, cmd, reply, now)
    if cmd.proof is LockProof.PASSWORD:
        return await _lock_with_password(uow, ctx, cmd, reply, source)
    return await _lock_with_code(uow, ctx, cmd, reply, now, source)


def _finish(
    reply: Reply[StateChange, Answer],
    r: Repositories,
    caller: Caller,
    done: StateChange | DomainError,
    now: datetime,
) -> Answer | DomainError:
    if isinstance(done, DomainError):
        return done
    return reply.finish(r, caller, done, now)


async def _lock_signed_in(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    cmd: LockCommand,
    reply: Reply[StateChange, Answer],
    now: datetime,
) -> Answer:
    if not cmd.access_token:
        raise session_missing()
    # Locking ends the session: a retry is still answered.
    caller = session_scope(ctx, cmd.access_token, frozenset({_LOCKED_SESSIONS}))

    def lock(r: Repositories) -> Answer | DomainError:
        earlier = reply.replay(r, caller)
        if earlier is not None:
            return earlier
        session, citizen = citizen_session(r, cmd.access_token, now)
        del session
        return _finish(
            reply,
            r,
            caller,
            _lock(r, ctx, citizen.subject, citizen.id, LockProof.SESSION, now),
            now,
        )

    return await answer_once(uow, reply, caller, lock)


async def _lock_with_password(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    cmd: LockCommand,
    reply: Reply[StateChange, Answer],
    source: str,
) -> Answer:
    caller = reply.content_scope()

    def lock(r: Repositories, check: PasswordCheck, now: datetime) -> Answer | DomainError:
        cred = check.credential
        assert cred.account_id is not None
        earlier = reply.replay(r, caller)
        if earlier is not None:
            return earlier
        done = _lock(r, ctx, cred.subject, cred.account_id, LockProof.PASSWORD, now)
        return _finish(reply, r, caller, done, now)

    return await as_citizen(
        uow,
        ctx,
        cmd.personal_id,
        cmd.password,
        source=source,
        field_name="password.personal_id",
        action="lock",
        then=lock,
        before=lambda r: reply.replay(r, caller),
    )


async def _lock_with_code(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    cmd: LockCommand,
    reply: Reply[StateChange, Answer],
    now: datetime,
    source: str,
) -> Answer:
    """Wrong codes count against the source's guesses for this person
    (shared with passwords) and against the code, whose ceiling is far above
    one source's budget (MAX_LOCK_CODE_ATTEMPTS): a stranger who knows the
    ID number cannot burn the citizen's lock code from a few places."""
    v = Violations()
    parsed_id = v.check(lambda: parse_personal_id(cmd.personal_id, "one_time_code.personal_id"))
    code = v.check(lambda: parse_activation_code(cmd.one_time_code, "one_time_code.one_time_code"))
    v.raise_if_any()
    assert parsed_id is not None and code is not None
    pid = parsed_id.value
    caller = reply.content_scope()

    def lock(r: Repositories) -> Answer | DomainError:
        earlier = reply.replay(r, caller)
        if earlier is not None:
            return earlier
        cred = r.accounts.credential(pid)
        wait = r.attempts.reserve(cred.subject, source, now)
        if wait is not None:
            return too_many_attempts(wait.total_seconds())  # committed, like the count
        spent = spend_recent_code(
            r, cred.account_id, CodePurpose.LOCK, code, now, MAX_LOCK_CODE_ATTEMPTS
        )
        if not spent:
            r.audit.append(
                AuditEntry(cred.subject, cred.account_id, None, "lock", "rejected_code", now)
            )
            # Kept as this request id's answer: a retry must not count again.
            return reply.refuse(r, caller, code_invalid("one_time_code.one_time_code"), now)
        assert cred.account_id is not None
        r.attempts.succeeded(cred.subject, source)
        done = _lock(r, ctx, cred.subject, cred.account_id, LockProof.ONE_TIME_CODE, now)
        return _finish(reply, r, caller, done, now)

    return await answer_once(uow, reply, caller, lock)


def _unlock(
    r: Repositories,
    ctx: UseCaseContext,
    subject: Subject,
    account_id: str,
    how: str,
    now: datetime,
    officer: Officer | None = None,
) -> StateChange | DomainError:
    if not r.accounts.unlock(account_id):
        if _account(r, account_id).state is AccountState.DEACTIVATED:
            return citizen_deceased()
        return PreconditionFailed(reason="ACCOUNT_NOT_LOCKED", message="the account is not locked")
    account = _account(r, account_id)
    _notify(r, account, NoticeKind.ACCOUNT_UNLOCKED, ctx, now)
    publish_status_change(r, account_id, StatusChange.UNLOCKED, now)
    actor = None if officer is None else officer.id
    r.audit.append(AuditEntry(subject, account_id, None, "unlock", f"ok_{how}", now, actor))
    return StateChange(account, changed=True)


async def unlock_by_officer(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    officer_key: str | None,
    personal_id: str,
    reply: Reply[StateChange, Answer],
) -> Answer:
    """An officer with the unlock role, having checked the citizen in person,
    unlocks the account. Officers are trusted with the account's state: they
    get precise answers, and every answer is in the citizen's audit log under
    the officer's id, refusals too (before, ACCOUNT_NOT_FOUND and
    ACCOUNT_NOT_LOCKED left no trace, so an officer could look up who has an
    account and whether it is locked unseen: found by an attacker's pass),
    except a refusal by the key's allowance, given before any look-up."""
    if not officer_key:
        raise officer_key_invalid()
    pid = parse_personal_id(personal_id, "officer.personal_id").value
    now = ctx.clock()

    def unlock(r: Repositories) -> Answer | DomainError:
        officer = officer_with_role(r, officer_key, OfficerRole.UNLOCK)
        if isinstance(officer, DomainError):
            return officer
        caller = officer_caller(officer)
        earlier = officer_replay(r, reply, caller, ctx.officer_limits, officer, now)
        if earlier is not None:
            return earlier
        cred = r.accounts.credential(pid)
        if cred.account_id is None:
            done: StateChange | DomainError = NotFound(
                reason="ACCOUNT_NOT_FOUND", message="no account has this ID number"
            )
        else:
            done = _unlock(r, ctx, cred.subject, cred.account_id, "officer", now, officer)
        if isinstance(done, DomainError):  # committed with the refusal
            outcome = f"refused_{done.reason.lower()}"
            r.audit.append(
                AuditEntry(cred.subject, cred.account_id, None, "unlock", outcome, now, officer.id)
            )
            # Kept as the request's answer: a retry is no second look-up
            # (audited, and counted against the officer's allowance, again).
            return reply.refuse(r, caller, done, now)
        return reply.finish(r, caller, done, now)

    done = await uow.atomically(unlock)
    if isinstance(done, DomainError):
        raise done
    return done


async def unlock_by_citizen(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    personal_id: str,
    password: str,
    one_time_code: str,
    reply: Reply[StateChange, Answer],
    *,
    source: str,
) -> Answer:
    """The citizen unlocks with the password and a code sent to the registered
    phone: both must be right. The password is checked (and throttled) first;
    only then is the code looked at, so a stranger cannot burn it."""
    code = parse_activation_code(one_time_code, "citizen.one_time_code")
    caller = reply.content_scope()

    def unlock(r: Repositories, check: PasswordCheck, now: datetime) -> Answer | DomainError:
        cred = check.credential
        assert cred.account_id is not None
        earlier = reply.replay(r, caller)
        if earlier is not None:
            return earlier
        if not spend_recent_code(r, cred.account_id, CodePurpose.UNLOCK, code, now):
            return reply.refuse(r, caller, code_invalid("citizen.one_time_code"), now)
        done = _unlock(r, ctx, cred.subject, cred.account_id, "citizen", now)
        return _finish(reply, r, caller, done, now)

    return await as_citizen(
        uow,
        ctx,
        personal_id,
        password,
        source=source,
        field_name="citizen.personal_id",
        action="unlock",
        then=unlock,
        before=lambda r: reply.replay(r, caller),
    )
