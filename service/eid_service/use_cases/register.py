"""Register a level-1 account: validate, match the registry (declared data
and the portrait the app captured), create PENDING, queue the activation
code. Nothing is created unless everything matches.

A citizen is found by ID number; a foreigner by passport (nationality and
number), and their account is keyed by the identification number the
registry assigned them, which becomes their username."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from eid_service.domain.account import Account, AccountLevel, AccountState, new_account_id
from eid_service.domain.activation import ACTIVATION_CODE_TTL, new_activation_code
from eid_service.domain.biometrics import Template
from eid_service.domain.citizen import (
    Demographics,
    Gender,
    demographics_match,
    parse_birth_date,
    parse_full_name,
    require_self_registration_age,
)
from eid_service.domain.contact import mask_phone, parse_email, parse_vn_mobile
from eid_service.domain.errors import (
    AlreadyExists,
    DomainError,
    PreconditionFailed,
)
from eid_service.domain.foreigner import (
    parse_issue_date,
    parse_issue_place,
    parse_nationality,
    parse_passport_number,
    passports_match,
)
from eid_service.domain.notices import NoticeKind, code_notice
from eid_service.domain.personal_id import PersonalId, check_consistent, parse_personal_id
from eid_service.domain.portrait import PortraitPolicy, parse_portrait
from eid_service.domain.registry_person import Passport, PersonKind, RegistryPerson
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.dependants import start_take_over
from eid_service.use_cases.one_time_codes import hit_limits
from eid_service.use_cases.ports import AuditEntry, Repositories, UnitOfWork
from eid_service.use_cases.replies import Answer, Reply, answer_once
from eid_service.use_cases.validation import Violations


@dataclass(frozen=True)
class PassportDeclaration:
    """A foreigner's passport as typed (request strings)."""

    number: str = field(repr=False)
    nationality: str
    issue_date: str = field(repr=False)
    issue_place: str = field(repr=False)


@dataclass(frozen=True)
class RegisterCommand:
    # Empty for a foreigner, who declares `passport` instead.
    personal_id: str = field(repr=False)
    full_name: str = field(repr=False)
    birth_date: str = field(repr=False)
    gender: Gender | None
    phone_number: str = field(repr=False)
    email: str = field(repr=False)
    # The face feature vector the app captured (float32 LE); checked, never kept.
    portrait: bytes = field(default=b"", repr=False)
    passport: PassportDeclaration | None = None


def _registrant(
    v: Violations, cmd: RegisterCommand, born: date | None, today: date
) -> PersonalId | Passport | None:
    """The ID number of a citizen, or the passport of a foreigner (exactly one)."""
    if cmd.passport is None:
        if not cmd.personal_id.strip():
            v.add(
                "personal_id",
                "PERSONAL_ID_MALFORMED",
                "the ID number is required (a foreigner gives the passport instead)",
            )
            return None
        return v.check(lambda: parse_personal_id(cmd.personal_id))
    if cmd.personal_id.strip():
        v.add(
            "passport",
            "PERSONAL_ID_AND_PASSPORT",
            "give the ID number (citizens) or the passport (foreigners), not both",
        )
        return None
    p = cmd.passport
    number = v.check(lambda: parse_passport_number(p.number))
    nationality = v.check(lambda: parse_nationality(p.nationality))
    issued = v.check(lambda: parse_issue_date(p.issue_date, today, born))
    place = v.check(lambda: parse_issue_place(p.issue_place))
    if number is None or nationality is None or issued is None or place is None:
        return None
    return Passport(number=number, nationality=nationality, issue_date=issued, issue_place=place)


def _declared_match(
    person: RegistryPerson | None,
    registrant: PersonalId | Passport,
    name: str,
    born: date,
    gender: Gender,
) -> bool:
    """Whether the declared data are the registry's: a citizen by ID number,
    a foreigner by passport (a foreigner's assigned number alone is not how
    they register)."""
    if person is None:
        return False
    registered = person.demographics
    if isinstance(registrant, Passport):
        if person.kind is not PersonKind.FOREIGNER or person.passport is None:
            return False
        same_passport = passports_match(registrant, person.passport)
        declared = Demographics(registered.personal_id, name, born, gender)
        return same_passport and demographics_match(declared, registered)
    declared = Demographics(registrant.value, name, born, gender)
    return person.kind is PersonKind.CITIZEN and demographics_match(declared, registered)


def _matches(
    policy: PortraitPolicy,
    person: RegistryPerson | None,
    registrant: PersonalId | Passport,
    capture: Template,
    declared: tuple[str, date, Gender],
) -> bool:
    """Everything must match; each part is compared whatever the others gave
    (the portrait too, against a decoy when there is nothing enrolled), so
    neither the answer nor the time taken tells which part failed."""
    portrait_ok = policy.matches(capture, None if person is None else person.portrait)
    details_ok = _declared_match(person, registrant, *declared)
    return portrait_ok and details_ok


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
    caller = reply.content_scope()
    v = Violations()
    name = v.check(lambda: parse_full_name(cmd.full_name))
    birth = v.check(lambda: parse_birth_date(cmd.birth_date, now.date()))
    registrant = _registrant(v, cmd, birth, now.date())
    if cmd.gender is None:
        v.add("gender", "GENDER_UNSPECIFIED", "gender is required")
    phone = v.check(lambda: parse_vn_mobile(cmd.phone_number))
    email = v.check(lambda: parse_email(cmd.email))
    capture = v.check(lambda: parse_portrait(cmd.portrait))
    v.raise_if_any()
    assert registrant and name and birth and cmd.gender and phone and capture
    gender = cmd.gender
    if isinstance(registrant, PersonalId):
        check_consistent(registrant, birth, gender)
    require_self_registration_age(birth, now.date())
    policy = ctx.portrait_policy
    code = new_activation_code()
    expires_at = now + ACTIVATION_CODE_TTL

    limits = ctx.send_limits

    def create(r: Repositories) -> Answer | DomainError:
        earlier = reply.replay(r, caller)
        if earlier is not None:
            return earlier
        # Counted first and committed even when refused: probing the registry
        # costs the prober.
        refused = hit_limits(r, now, [(limits.register_per_source, source)])
        if refused is not None:
            return refused
        if isinstance(registrant, Passport):
            person = r.registry.person_by_passport(registrant.nationality, registrant.number)
        else:
            person = r.registry.person(registrant.value)
        matched = _matches(policy, person, registrant, capture, (name, birth, gender))
        if person is None or not matched:
            # One answer for all: Register does not tell who is in the registry,
            # nor whether the data or the portrait failed.
            return PreconditionFailed(
                reason="REGISTRY_MISMATCH",
                message="the declared data and portrait do not match the population registry",
            )
        registered = person.demographics
        existing = r.accounts.credential(registered.personal_id)
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
                nationality=None if person.passport is None else person.passport.nationality,
            )
            subject = r.accounts.add(account)
        r.activation_codes.add(account.id, code, now, expires_at)
        notice = code_notice(NoticeKind.ACTIVATION_CODE, code, ACTIVATION_CODE_TTL, ctx.language)
        r.outbox.add("sms", phone, notice, now)
        r.audit.append(AuditEntry(subject, account.id, None, "register", "ok", now))
        done = Registered(account, "sms", mask_phone(phone), expires_at)
        return reply.finish(r, caller, done, now)

    return await answer_once(uow, reply, caller, create)
