"""A guardian's dependants (domain/dependant.py): register a child under 14,
list them, act for one (QR shares, access history); the sweep that tells
guardians their child turned 14; and the child's take-over at 14, which
Register (DEPENDANT -> PENDING with the child's phone) and Activate (the
guardian's link ends) call.

What a signed-in guardian is told: whether the registry records them as the
child's guardian (GUARDIAN_NOT_RECORDED, the same answer whether or not the
ID number exists, so the registry is not probed through it) and, for their
own ward only, whether the declared data match (REGISTRY_MISMATCH) and
whether the child has an account already (ACCOUNT_ALREADY_EXISTS): all of it
about their own child, which the registry already says is theirs. A child
whose guardian died is taken on by the other recorded parent or guardian
who registers it: the same account, now theirs."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from eid_service.domain.account import AccountState
from eid_service.domain.citizen import (
    Demographics,
    Gender,
    demographics_match,
    parse_birth_date,
    parse_full_name,
)
from eid_service.domain.dependant import (
    Dependant,
    dependant_not_found,
    new_dependant_account,
    require_dependant_age,
    require_ward,
    take_over_date,
)
from eid_service.domain.errors import AlreadyExists, Conflict, PreconditionFailed
from eid_service.domain.notices import NoticeKind, dependant_notice
from eid_service.domain.personal_id import check_consistent, parse_personal_id
from eid_service.use_cases import pages
from eid_service.use_cases.auth import citizen_of_session, session_missing
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.ports import AccountView, AuditEntry, Repositories, Subject, UnitOfWork
from eid_service.use_cases.replies import Answer, Reply, SessionScope, once, session_scope
from eid_service.use_cases.validation import Violations

_ACCOUNT_ID = re.compile(r"acc_[0-9a-f]{26}")
# The coming-of-age sweep looks this far back for children it has not told
# their guardian about yet: a server down for less than a year misses nobody.
LOOKBACK_DAYS = 400
SWEEP_BATCH = 200


@dataclass(frozen=True)
class RegisterDependantCommand:
    personal_id: str = field(repr=False)
    full_name: str = field(repr=False)
    birth_date: str = field(repr=False)
    gender: Gender | None


@dataclass(frozen=True)
class DependantPage:
    dependants: list[Dependant]
    next_page_token: str = ""


def _registry_mismatch() -> PreconditionFailed:
    return PreconditionFailed(
        reason="REGISTRY_MISMATCH",
        message="the ID number and declared data do not match the population registry",
    )


async def register_dependant(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    session_token: str | None,
    cmd: RegisterDependantCommand,
    reply: Reply[Dependant, Answer],
) -> Answer:
    """The signed-in (so ACTIVE) guardian registers a child under 14 the
    registry records as theirs. Request ids are scoped to the session."""
    if not session_token:
        raise session_missing()
    now = ctx.clock()
    today = now.date()
    v = Violations()
    pid = v.check(lambda: parse_personal_id(cmd.personal_id))
    name = v.check(lambda: parse_full_name(cmd.full_name))
    birth = v.check(lambda: parse_birth_date(cmd.birth_date, today))
    if cmd.gender is None:
        v.add("gender", "GENDER_UNSPECIFIED", "gender is required")
    v.raise_if_any()
    assert pid and name and birth and cmd.gender
    check_consistent(pid, birth, cmd.gender)
    require_dependant_age(birth, today)
    declared = Demographics(pid.value, name, birth, cmd.gender)
    caller = session_scope(ctx, session_token)

    def create(r: Repositories) -> Answer:
        earlier = reply.replay(r, caller)
        if earlier is not None:
            return earlier
        guardian = citizen_of_session(r, session_token, now)
        account = r.accounts.get(guardian.id)
        assert account is not None
        # First: nothing about a child who is not the guardian's is told.
        require_ward(pid.value, r.registry.wards(account.demographics.personal_id))
        registered = r.registry.find(pid.value)
        if registered is None or not demographics_match(declared, registered):
            raise _registry_mismatch()
        child = r.accounts.find_by_personal_id(pid.value)
        if child is not None:
            return _take_on(r, reply, caller, child.id, guardian.id, now)
        # The registry's spelling is authoritative once the match succeeded.
        dependant = Dependant(
            account=new_dependant_account(registered, now),
            guardian_account_id=guardian.id,
            take_over_on=take_over_date(registered.birth_date),
        )
        subject = r.dependants.add(dependant)
        entry = AuditEntry(subject, dependant.account.id, None, "register_dependant", "ok", now)
        r.audit.append(_by_guardian(entry, guardian.id))
        return reply.finish(r, caller, dependant, now)

    return await once(uow, reply, caller, create)


def _take_on(
    r: Repositories,
    reply: Reply[Dependant, Answer],
    caller: SessionScope,
    account_id: str,
    guardian_account_id: str,
    now: datetime,
) -> Answer:
    """The child has an account already. If it is a dependant nobody can act
    for any more (its guardian died), the caller, whom the registry records
    as the child's parent or guardian too, becomes its guardian; else
    ACCOUNT_ALREADY_EXISTS. Before, such a child was stranded until 14: the
    other parent was refused, and nobody could share its data (found by an
    attacker's pass)."""
    found = r.dependants.get(account_id)
    if found is None or found.guardian_account_id == guardian_account_id:
        raise _has_account()
    former = r.accounts.get(found.guardian_account_id)
    if not found.stranded(None if former is None else former.state):
        raise _has_account()
    if not r.dependants.change_guardian(account_id, found.guardian_account_id, guardian_account_id):
        raise Conflict()  # another guardian took it on first
    moved = dataclasses.replace(found, guardian_account_id=guardian_account_id)
    subject = r.accounts.subject_of(found.account.demographics.personal_id)
    entry = AuditEntry(subject, account_id, None, "guardian_changed", "former_deactivated", now)
    r.audit.append(_by_guardian(entry, guardian_account_id))
    return reply.finish(r, caller, moved, now)


def _has_account() -> AlreadyExists:
    return AlreadyExists(
        reason="ACCOUNT_ALREADY_EXISTS",
        message="this child has an account already (see ListDependants)",
    )


def _by_guardian(entry: AuditEntry, guardian_account_id: str) -> AuditEntry:
    """The entry, under the child's subject, with the guardian as its actor."""
    return dataclasses.replace(entry, actor=guardian_account_id)


async def list_dependants(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    session_token: str | None,
    page_size: int,
    page_token: str,
) -> DependantPage:
    """The signed-in guardian's dependants not taken over yet, oldest first
    (AIP-158 pages)."""
    if not session_token:
        raise session_missing()
    size = pages.page_size(page_size)
    after = pages.after_id(page_token, _ACCOUNT_ID)
    now = ctx.clock()

    def page(r: Repositories) -> DependantPage:
        guardian = citizen_of_session(r, session_token, now)
        found = r.dependants.of_guardian(guardian.id, after, size + 1)
        shown = found[:size]
        more = len(found) > size
        token = pages.next_page_token(shown[-1].account.id) if more else ""
        return DependantPage(shown, token)

    return await uow.read(page)


def acting_for(r: Repositories, guardian: AccountView, dependant_account_id: str) -> Dependant:
    """The guardian's dependant they may act for now (inside a transaction):
    DEPENDANT_NOT_FOUND for anyone else's account, DEPENDANT_TAKEN_OVER once
    the child has started taking it over."""
    if not _ACCOUNT_ID.fullmatch(dependant_account_id):
        raise dependant_not_found()
    found = r.dependants.get(dependant_account_id)
    if found is None or found.guardian_account_id != guardian.id:
        raise dependant_not_found()
    found.require_managed()
    return found


def acted_by_guardian(
    r: Repositories, dependant: Dependant, action: str, guardian_account_id: str, now: datetime
) -> None:
    """Audits, under the child, an act of its guardian for it."""
    subject = r.accounts.subject_of(dependant.account.demographics.personal_id)
    entry = AuditEntry(subject, dependant.account.id, None, action, "ok", now)
    r.audit.append(_by_guardian(entry, guardian_account_id))


def _tell_guardian(
    r: Repositories, ctx: UseCaseContext, guardian_account_id: str, kind: NoticeKind, now: datetime
) -> None:
    guardian = r.accounts.get(guardian_account_id)
    if guardian is None or guardian.state is AccountState.DEACTIVATED:
        return
    notice = dependant_notice(kind, ctx.language)
    if guardian.phone:
        r.outbox.add("sms", guardian.phone, notice, now)
    if guardian.email:
        r.outbox.add("email", guardian.email, notice, now)


async def notice_coming_of_age(uow: UnitOfWork, ctx: UseCaseContext) -> int:
    """Tells each guardian, once, that a dependant turned 14 and can take the
    account over (the child has no phone of its own here: the guardian's
    phone and email carry it to them; the child's own audit trail records
    it). Run periodically by the server; returns how many it told about."""
    now = ctx.clock()
    today = now.date()
    days = [today - timedelta(days=back) for back in range(LOOKBACK_DAYS)]

    def batch(r: Repositories) -> int:
        due = r.dependants.due(days, SWEEP_BATCH)
        for dependant in due:
            if not dependant.can_take_over(today):  # cannot be: found by that day
                continue
            if not r.dependants.mark_notified(dependant.account.id, now):
                continue  # another worker told them
            _tell_guardian(r, ctx, dependant.guardian_account_id, NoticeKind.DEPENDANT_OF_AGE, now)
            subject = r.accounts.subject_of(dependant.account.demographics.personal_id)
            r.audit.append(
                AuditEntry(subject, dependant.account.id, None, "of_age", "guardian_told", now)
            )
        return len(due)

    told = 0
    while True:
        found = await uow.atomically(batch, long=True)
        told += found
        if found < SWEEP_BATCH:
            return told


def start_take_over(
    r: Repositories,
    ctx: UseCaseContext,
    subject: Subject,
    account_id: str,
    phone: str,
    email: str | None,
    now: datetime,
) -> Dependant:
    """Register by a child of 14 or over whose account a guardian registered
    (inside Register's transaction, after its registry match): the account
    becomes the child's PENDING one, with the child's phone; the guardian's
    shares for it end and the guardian is told. Register then sends the
    activation code to the child's phone."""
    if not r.dependants.start_take_over(account_id, phone, email, now):
        raise Conflict()  # a concurrent Register took it over first
    r.shares.revoke_all(account_id, now)
    dependant = r.dependants.get(account_id)
    assert dependant is not None
    _tell_guardian(
        r, ctx, dependant.guardian_account_id, NoticeKind.DEPENDANT_TAKE_OVER_STARTED, now
    )
    r.audit.append(AuditEntry(subject, account_id, None, "take_over", "started", now))
    return dependant


def finish_take_over(
    r: Repositories, ctx: UseCaseContext, subject: Subject, account_id: str, now: datetime
) -> None:
    """Activate of an account a guardian registered (inside Activate's
    transaction): from now on the guardian no longer acts for it."""
    guardian_account_id = r.dependants.finish_take_over(account_id, now)
    if guardian_account_id is None:
        return
    # The account has no shares of its own yet (the child could not sign in
    # while it was pending): any live one is a guardian's that committed just
    # after the start revoked the rest (PostgreSQL). Unredeemable already, it
    # was listed ACTIVE in the child's own list; now it is REVOKED.
    r.shares.revoke_all(account_id, now)
    _tell_guardian(r, ctx, guardian_account_id, NoticeKind.DEPENDANT_TAKEN_OVER, now)
    r.audit.append(AuditEntry(subject, account_id, None, "take_over", "completed", now))
