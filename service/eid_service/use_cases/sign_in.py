"""Open a citizen session with ID number and password."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from eid_service.domain.account import Account, require_state_active
from eid_service.domain.errors import DomainError, InvalidInput
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.credentials import PasswordCheck, as_citizen
from eid_service.use_cases.ports import AuditEntry, IssuedTokens, Repositories, UnitOfWork
from eid_service.use_cases.replies import Answer, Reply
from eid_service.use_cases.sessions import LIFETIMES

MAX_DEVICE_NAME = 64


@dataclass(frozen=True)
class SignedIn:
    tokens: IssuedTokens
    account: Account


def parse_device_name(raw: str) -> str:
    """What the citizen will see in ListSessions: printable, at most 64 characters."""
    name = " ".join(raw.split())
    if len(name) > MAX_DEVICE_NAME or not name.isprintable():
        raise InvalidInput.of(
            "device_name",
            "DEVICE_NAME_INVALID",
            f"device_name must be printable and at most {MAX_DEVICE_NAME} characters",
        )
    return name


async def sign_in(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    personal_id: str,
    password: str,
    reply: Reply[SignedIn, Answer],
    *,
    source: str,
    device_name: str = "",
) -> Answer:
    """`source` is where the attempt comes from (the client's address): wrong
    passwords slow that source down for this ID number, nobody else. A right
    password opens a session: an access token and a refresh token.

    With a request id, a retry sending the same fields gets the first
    answer, checked before the password is (no second Argon2id run, no
    second session). The scope is the request's own content, password
    included, so only who sent it can find its answer: before, a sign-in
    whose answer a deadline cut off left a session nobody could use, and
    each retry opened another."""
    device = parse_device_name(device_name)
    caller = reply.content_scope()

    def open_session(r: Repositories, check: PasswordCheck, now: datetime) -> Answer | DomainError:
        cred = check.credential
        assert cred.account_id is not None
        earlier = reply.replay(r, caller)
        if earlier is not None:
            return earlier  # a duplicate that was checked alongside the first
        # The state as it stands now, not as it was before the password was
        # compared: a LockAccount answered meanwhile must not leave a session
        # it never saw (found by an attacker's pass: 17 of 20 sign-ins with a
        # lock 0-30 ms in kept theirs).
        state = r.accounts.hold(cred.account_id)
        assert state is not None  # accounts are never deleted
        try:
            require_state_active(state)
        except DomainError as refused:  # told only to who knows the password
            outcome = refused.reason.lower()
            r.audit.append(AuditEntry(cred.subject, cred.account_id, None, "sign_in", outcome, now))
            return refused
        account = r.accounts.get(cred.account_id)
        assert account is not None
        tokens = r.sessions.open(account.id, device, now, LIFETIMES)
        r.audit.append(AuditEntry(cred.subject, account.id, None, "sign_in", "ok", now))
        return reply.finish(r, caller, SignedIn(tokens, account), now)

    return await as_citizen(
        uow,
        ctx,
        personal_id,
        password,
        source=source,
        field_name="personal_id",
        action="sign_in",
        then=open_session,
        before=lambda r: reply.replay(r, caller),
    )
