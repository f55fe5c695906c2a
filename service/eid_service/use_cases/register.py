"""Register a level-1 account: validate, match the registry, create PENDING,
queue the activation code. Nothing is created unless everything matches."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from eid_service.domain.account import Account, AccountLevel, AccountState, new_account_id
from eid_service.domain.activation import ACTIVATION_CODE_TTL, new_activation_code
from eid_service.domain.citizen import (
    Demographics,
    Gender,
    demographics_match,
    parse_birth_date,
    parse_full_name,
    require_self_registration_age,
)
from eid_service.domain.contact import mask_phone, parse_email, parse_vn_mobile
from eid_service.domain.errors import AlreadyExists, DomainError, PreconditionFailed
from eid_service.domain.notices import NoticeKind, code_notice
from eid_service.domain.personal_id import check_consistent, parse_personal_id
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.dependants import start_take_over
from eid_service.use_cases.one_time_codes import hit_limits
from eid_service.use_cases.ports import AuditEntry, Repositories, UnitOfWork
from eid_service.use_cases.replies import Answer, Reply, answer_once
from eid_service.use_cases.validation import Violations

CALLER = "anonymous"


@dataclass(frozen=True)
class RegisterCommand:
    personal_id: str = field(repr=False)
    full_name: str = field(repr=False)
    birth_date: str = field(repr=False)
    gender: Gender | None
    phone_number: str = field(repr=False)
    email: str = field(repr=False)


@dataclass(frozen=True)
class Registered:
    account: Account
    channel: str
    masked_destination: str
    code_expires_at: datetime


async def register(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    cmd: RegisterCommand,
    reply: Reply[Registered, Answer],
    *,
    source: str = "unknown",
) -> Answer:
    """`source` is the client's address: Register is limited per source and
    per destination phone (ctx.send_limits), across server processes."""
    now = ctx.clock()
    v = Violations()
    pid = v.check(lambda: parse_personal_id(cmd.personal_id))
    name = v.check(lambda: parse_full_name(cmd.full_name))
    birth = v.check(lambda: parse_birth_date(cmd.birth_date, now.date()))
    if cmd.gender is None:
        v.add("gender", "GENDER_UNSPECIFIED", "gender is required")
    phone = v.check(lambda: parse_vn_mobile(cmd.phone_number))
    email = v.check(lambda: parse_email(cmd.email))
    v.raise_if_any()
    assert pid and name and birth and cmd.gender and phone
    check_consistent(pid, birth, cmd.gender)
    require_self_registration_age(birth, now.date())
    declared = Demographics(pid.value, name, birth, cmd.gender)
    code = new_activation_code()
    expires_at = now + ACTIVATION_CODE_TTL

    limits = ctx.send_limits

    def create(r: Repositories) -> Answer | DomainError:
        earlier = reply.replay(r, CALLER)
        if earlier is not None:
            return earlier
        # Counted first and committed even when refused: probing the registry
        # costs the prober.
        refused = hit_limits(r, now, [(limits.register_per_source, source)])
        if refused is not None:
            return refused
        registered = r.registry.find(pid.value)
        if registered is None or not demographics_match(declared, registered):
            # One answer for both: Register does not tell who is in the registry.
            return PreconditionFailed(
                reason="REGISTRY_MISMATCH",
                message="the ID number and declared data do not match the population registry",
            )
        existing = r.accounts.credential(pid.value)
        if existing.state is AccountState.PENDING:
            return AlreadyExists(
                reason="ACCOUNT_PENDING",
                message="an account for this ID number is awaiting activation;"
                " ask for a new code with ResendActivationCode",
            )
        if existing.account_id is not None and existing.state is not AccountState.DEPENDANT:
            return AlreadyExists(
                reason="ACCOUNT_ALREADY_EXISTS", message="an account exists for this ID number"
            )
        refused = hit_limits(r, now, [(limits.register_per_phone, phone)])
        if refused is not None:
            return refused
        if existing.account_id is not None:
            # A child of 14 or over (checked above) takes over the account a
            # guardian registered for it: it becomes the child's, PENDING.
            subject = existing.subject
            taken = start_take_over(r, ctx, subject, existing.account_id, phone, email, now)
            account = taken.account
        else:
            # The registry's spelling is authoritative once the match succeeded.
            account = Account(
                id=new_account_id(),
                demographics=registered,
                phone=phone,
                email=email,
                level=AccountLevel.LEVEL_1,
                state=AccountState.PENDING,
                created_at=now,
            )
            subject = r.accounts.add(account)
        r.activation_codes.add(account.id, code, now, expires_at)
        notice = code_notice(NoticeKind.ACTIVATION_CODE, code, ACTIVATION_CODE_TTL, ctx.language)
        r.outbox.add("sms", phone, notice, now)
        r.audit.append(AuditEntry(subject, account.id, None, "register", "ok", now))
        done = Registered(account, "sms", mask_phone(phone), expires_at)
        return reply.finish(r, CALLER, done, now)

    return await answer_once(uow, reply, CALLER, create)
