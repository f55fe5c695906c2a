"""Ask for a one-time code (activation resend, lock, unlock) and spend one.

Asking needs the ID number and the phone or email the account was
registered with. The answer is the same whether the two match an account in
the right state or not (no account, another phone, an active account asking
for an activation code): "if they match, a code is on its way to what you
typed". Limits count the pair (ID number, contact typed) per source first,
then over all sources under a ceiling far above one source's share: a
stranger who does not know the citizen's phone spends another pair's
budget, one who knows it spends their own, and a limit reached tells
nothing about a match."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from eid_service.domain.account import NO_ACCOUNT, AccountState
from eid_service.domain.activation import (
    ACCOUNT_CODE_TTL,
    ACTIVATION_CODE_TTL,
    MAX_ACTIVATION_ATTEMPTS,
    RECENT_ACCOUNT_CODES,
    CodePurpose,
    new_activation_code,
)
from eid_service.domain.contact import mask_email, mask_phone, parse_email, parse_vn_mobile
from eid_service.domain.errors import DomainError, InvalidInput, TooManyAttempts
from eid_service.domain.notices import Notice, NoticeKind, code_notice
from eid_service.domain.personal_id import parse_personal_id
from eid_service.domain.rate_limits import Limit
from eid_service.domain.share import Attribute
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.ports import AuditEntry, Repositories, UnitOfWork
from eid_service.use_cases.replies import Answer, Reply, answer_once
from eid_service.use_cases.validation import Violations

# Which state an account must be in for a code of each purpose to be sent.
_ELIGIBLE = {
    CodePurpose.ACTIVATION: AccountState.PENDING,
    CodePurpose.LOCK: AccountState.ACTIVE,
    CodePurpose.UNLOCK: AccountState.LOCKED,
}
_NOTICE = {
    CodePurpose.ACTIVATION: NoticeKind.ACTIVATION_CODE,
    CodePurpose.LOCK: NoticeKind.LOCK_CODE,
    CodePurpose.UNLOCK: NoticeKind.UNLOCK_CODE,
}
_TTL = {
    CodePurpose.ACTIVATION: ACTIVATION_CODE_TTL,
    CodePurpose.LOCK: ACCOUNT_CODE_TTL,
    CodePurpose.UNLOCK: ACCOUNT_CODE_TTL,
}


@dataclass(frozen=True)
class CodeRequest:
    purpose: CodePurpose
    personal_id: str = field(repr=False)
    phone_number: str = field(repr=False, default="")
    email: str = field(repr=False, default="")


@dataclass(frozen=True)
class CodeSent:
    """What the caller is told, whatever happened: the channel and masked
    form of what they typed, and when a code sent now would expire."""

    channel: str
    masked_destination: str
    expires_at: datetime


def too_many_requests(wait: timedelta) -> TooManyAttempts:
    return TooManyAttempts(
        reason="TOO_MANY_REQUESTS",
        message="too many requests; try again later",
        metadata={"retry_after_seconds": str(int(wait.total_seconds()) + 1)},
    )


def hit_limits(r: Repositories, now: datetime, hits: list[tuple[Limit, str]]) -> DomainError | None:
    """Counts one hit under each limit, or none: the first one spent refuses,
    and the hits counted before it are taken back. Before, a request a
    shared ceiling refused still spent the sender's own allowance: three
    addresses holding the ceiling for five minutes refused the citizen's own
    for the rest of the day (found in review)."""
    for n, (limit, key) in enumerate(hits):
        wait = r.rate_limits.hit(key, limit, now)
        if wait is not None:
            for counted, counted_key in hits[:n]:
                r.rate_limits.take_back(counted_key, counted, now)
            return too_many_requests(wait)
    return None


async def request_code(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    req: CodeRequest,
    reply: Reply[CodeSent, Answer],
    *,
    source: str,
) -> Answer:
    caller = reply.content_scope()
    v = Violations()
    pid = v.check(lambda: parse_personal_id(req.personal_id))
    # Blank counts as not given (a field of spaces is no contact).
    typed_phone, typed_email = req.phone_number.strip(), req.email.strip()
    phone = v.check(lambda: parse_vn_mobile(typed_phone)) if typed_phone else None
    email = v.check(lambda: parse_email(typed_email)) if typed_email else None
    if not typed_phone and not typed_email:
        v.add("phone_number", "CONTACT_MISSING", "give the phone number or the email registered")
    if typed_phone and typed_email:
        v.add("email", "CONTACT_AMBIGUOUS", "give the phone number or the email, not both")
    v.raise_if_any()
    assert pid is not None and (phone or email)
    channel, contact = ("sms", phone) if phone else ("email", email)
    contact_kind = Attribute.PHONE_NUMBER if phone else Attribute.EMAIL
    assert contact is not None
    now = ctx.clock()
    ttl = _TTL[req.purpose]
    code = new_activation_code()
    limits = ctx.send_limits
    pair = f"{req.purpose.value}:{pid.value}:{contact}"
    asked_here = f"{source}\x00{pair}"
    shown = mask_phone(contact) if channel == "sms" else mask_email(contact)
    answer = CodeSent(channel, shown, now + ttl)

    notice = code_notice(_NOTICE[req.purpose], code, ttl, ctx.language)

    def send(r: Repositories) -> Answer | DomainError:
        earlier = reply.replay(r, caller)
        if earlier is not None:
            return earlier
        refused = hit_limits(
            r,
            now,
            [
                (limits.code_per_source, source),
                (limits.code_per_minute, asked_here),
                (limits.code_per_day, asked_here),
                (limits.code_ceiling_per_minute, pair),
                (limits.code_ceiling_per_day, pair),
            ],
        )
        if refused is not None:
            return refused  # committed: the hits count
        # Only the contact is read: the work done is the same whoever the
        # number names (a decoy is opened when there is nothing to open).
        cred, registered = r.accounts.credential_and_contact(pid.value, contact_kind)
        action = f"request_{req.purpose.value}_code"
        if (
            cred.account_id is None
            or registered != contact
            or cred.state is not _ELIGIBLE[req.purpose]
        ):
            r.audit.append(AuditEntry(cred.subject, cred.account_id, None, action, "not_sent", now))
            as_if_sent(r, channel, contact, notice, now)
            return reply.finish(r, caller, answer, now)
        r.activation_codes.add(cred.account_id, code, now, now + ttl, req.purpose)
        r.outbox.add(channel, contact, notice, now)
        r.audit.append(AuditEntry(cred.subject, cred.account_id, None, action, "sent", now))
        return reply.finish(r, caller, answer, now)

    return await answer_once(uow, reply, caller, send)


def code_invalid(field_name: str = "one_time_code") -> InvalidInput:
    return InvalidInput.of(
        field_name,
        "ONE_TIME_CODE_INVALID",
        "the code is not correct, has expired or was already used; ask for a new one",
    )


# The id of no code: a statement about it changes nothing.
NO_CODE = "act_none"


def as_if_sent(
    r: Repositories, channel: str, destination: str, notice: Notice, now: datetime
) -> None:
    """The work a code sent does, keeping nothing: a statement on the codes
    (a sent one's insert), the message sealed and its insert run. A code
    not sent then costs what a sent one does, so the time taken does not
    tell whether the number names an account it would go to (found in
    review: one or two statements and two seals fewer told it)."""
    r.activation_codes.count_wrong_guess(NO_CODE, 0)
    r.outbox.rehearse(channel, destination, notice, now)


def spend_code(
    r: Repositories,
    account_id: str | None,
    purpose: CodePurpose,
    code: str,
    now: datetime,
    max_attempts: int = MAX_ACTIVATION_ATTEMPTS,
    *,
    party_id: str | None = None,
) -> bool:
    """Uses the account's newest code of this purpose if `code` is it (inside a
    transaction); a wrong code counts against the code's attempts. Every way
    of failing looks alike to the caller, and an unknown ID number runs the
    same lookup as a known one."""
    record = r.activation_codes.latest_for(account_id or NO_ACCOUNT, purpose, party_id=party_id)
    if account_id is None or record is None:
        # Counted against no code: the statements a wrong guess at a code
        # really sent runs (before, one fewer told a number without an account).
        r.activation_codes.count_wrong_guess(NO_CODE, max_attempts)
        return False
    if not r.activation_codes.matches(record, code):
        r.activation_codes.count_wrong_guess(record.id, max_attempts)
        return False
    return r.activation_codes.consume(record.id, now, max_attempts)


def spend_recent_code(
    r: Repositories,
    account_id: str | None,
    purpose: CodePurpose,
    code: str,
    now: datetime,
    max_attempts: int = MAX_ACTIVATION_ATTEMPTS,
) -> bool:
    """Uses `code` if it is one of the account's RECENT_ACCOUNT_CODES newest
    codes of this purpose, sent after any code used, not expired nor out of
    attempts (inside a transaction). A guess that uses none counts against
    each of them. Every way of failing looks alike to the caller, and an
    unknown ID number runs the same statements as a known one."""
    owner = account_id or NO_ACCOUNT
    for record in r.activation_codes.recent_for(owner, purpose, RECENT_ACCOUNT_CODES):
        if record.consumed_at is not None:
            break  # a code used ends the ones sent before it
        if r.activation_codes.matches(record, code):
            return r.activation_codes.consume(record.id, now, max_attempts)
    r.activation_codes.count_wrong_guess_on_recent(
        owner, purpose, RECENT_ACCOUNT_CODES, max_attempts
    )
    return False
