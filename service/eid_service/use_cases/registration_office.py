"""Level 2 at a registration office: an officer with the `registration` role,
having checked the citizen in person, registers a level-2 account or raises
a level-1 one, with the portrait and fingerprints captured at the counter.

The capture must match the templates the population registry enrolled
(domain/biometric_match.py) and, for a new account, the declared data must
match the registry as at self-service registration; any mismatch creates
nothing and answers REGISTRY_MISMATCH, whichever part failed. On a match the
capture is kept on the account, sealed, as its enrolment for biometric
Verify. A new account is PENDING and its activation code goes to the phone,
for the citizen to activate in the app (Activate), as the guidance says;
an upgraded one's citizen is told by SMS and email.

Officers are trusted with accounts' states (they have the citizen before
them): they get precise answers. Every outcome after the officer is known is
in the citizen's audit log under the officer's id, and kept as the request
id's answer, so a retry neither acts nor audits twice."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from eid_service.domain.account import (
    Account,
    AccountLevel,
    AccountState,
    new_account_id,
    require_state_active,
)
from eid_service.domain.activation import ACTIVATION_CODE_TTL, new_activation_code
from eid_service.domain.biometric_match import (
    BiometricCapture,
    capture_matches,
    check_counter_fingers,
    parse_finger,
)
from eid_service.domain.biometrics import (
    FACE_DIMENSIONS,
    FINGERPRINT_DIMENSIONS,
    Finger,
    Template,
    parse_template,
)
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
    Conflict,
    DomainError,
    NotFound,
    PreconditionFailed,
)
from eid_service.domain.linked_document import LinkedDocument
from eid_service.domain.notices import NoticeKind, code_notice, state_notice
from eid_service.domain.officer import Officer, OfficerRole
from eid_service.domain.personal_id import check_consistent, parse_personal_id
from eid_service.domain.registry_person import RegistryPerson
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.linked_documents import (
    LINK_ACTION,
    DocumentCommand,
    link_from_registry,
    parse_document,
)
from eid_service.use_cases.officer_auth import (
    OfficerCall,
    authenticate_officer,
    officer_caller,
    officer_replay,
)
from eid_service.use_cases.one_time_codes import hit_limits
from eid_service.use_cases.ports import AuditEntry, Repositories, Subject, UnitOfWork
from eid_service.use_cases.replies import Answer, Reply, answer_once
from eid_service.use_cases.validation import Violations

REGISTER_ACTION = "register_level2"
UPGRADE_ACTION = "upgrade_level2"


@dataclass(frozen=True)
class CaptureInput:
    """The capture as it came: the portrait and (finger number, template) pairs."""

    portrait: bytes = field(repr=False)
    fingerprints: tuple[tuple[int, bytes], ...] = field(repr=False)


@dataclass(frozen=True)
class RegisterLevel2Command:
    personal_id: str = field(repr=False)
    full_name: str = field(repr=False)
    birth_date: str = field(repr=False)
    gender: Gender | None
    phone_number: str = field(repr=False)
    email: str = field(repr=False)
    capture: CaptureInput


@dataclass(frozen=True)
class UpgradeCommand:
    personal_id: str = field(repr=False)
    capture: CaptureInput


@dataclass(frozen=True)
class OfficerLinkCommand:
    personal_id: str = field(repr=False)
    document: DocumentCommand


@dataclass(frozen=True)
class Level2Registered:
    account: Account
    channel: str
    masked_destination: str
    code_expires_at: datetime


def _finger(v: Violations, value: int, where: str) -> Finger | None:
    return v.check(lambda: parse_finger(value, f"{where}.finger"))


def _fingerprint(v: Violations, raw: bytes, where: str) -> Template | None:
    return v.check(lambda: parse_template(raw, FINGERPRINT_DIMENSIONS, f"{where}.template"))


def parse_capture(
    v: Violations, raw: CaptureInput, field_name: str = "capture"
) -> BiometricCapture | None:
    """The checked capture; its problems go to `v` (None for a bad portrait:
    `v.raise_if_any()` comes before it is used)."""
    portrait = v.check(
        lambda: parse_template(raw.portrait, FACE_DIMENSIONS, f"{field_name}.portrait")
    )
    fingers: list[Finger | None] = []
    prints: dict[Finger, Template] = {}
    for i, (number, template) in enumerate(raw.fingerprints):
        where = f"{field_name}.fingerprints[{i}]"
        finger = _finger(v, number, where)
        parsed = _fingerprint(v, template, where)
        fingers.append(finger)
        if finger is not None and parsed is not None:
            prints[finger] = parsed
    v.check(lambda: check_counter_fingers(fingers, f"{field_name}.fingerprints"))
    return None if portrait is None else BiometricCapture(portrait, prints)


def registry_mismatch() -> PreconditionFailed:
    return PreconditionFailed(
        reason="REGISTRY_MISMATCH",
        message="the declared data, portrait or fingerprints do not match the population registry",
    )


def _matches(ctx: UseCaseContext, person: RegistryPerson | None, capture: BiometricCapture) -> bool:
    if person is None:
        return False
    thresholds = ctx.biometric_thresholds
    return capture_matches(capture, person.portrait, person.fingerprints, thresholds)


@dataclass(frozen=True)
class _Call:
    """One officer's call, inside its transaction: audits and keeps answers."""

    r: Repositories
    officer: Officer
    reply: Reply[Any, Any]
    subject: Subject
    action: str
    now: datetime

    @property
    def caller(self) -> str:
        return officer_caller(self.officer)

    def audit(self, account_id: str | None, outcome: str, reason: str | None = None) -> None:
        self.r.audit.append(
            AuditEntry(
                self.subject,
                account_id,
                None,
                self.action,
                outcome,
                self.now,
                actor=self.officer.id,
                reason=reason,
                request_id=self.reply.request_id or None,
                trace_id=self.reply.trace_id,
            )
        )

    def refuse(self, error: DomainError, account_id: str | None = None) -> DomainError:
        """Audited and kept as the request id's answer."""
        self.audit(account_id, "rejected", error.reason)
        return self.reply.refuse(self.r, self.caller, error, self.now)


async def register_level2(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    call: OfficerCall,
    cmd: RegisterLevel2Command,
    reply: Reply[Level2Registered, Answer],
) -> Answer:
    officer = await authenticate_officer(uow, call, OfficerRole.REGISTRATION)
    caller = officer_caller(officer)
    now = ctx.clock()
    v = Violations()
    pid = v.check(lambda: parse_personal_id(cmd.personal_id))
    name = v.check(lambda: parse_full_name(cmd.full_name))
    birth = v.check(lambda: parse_birth_date(cmd.birth_date, now.date()))
    if cmd.gender is None:
        v.add("gender", "GENDER_UNSPECIFIED", "gender is required")
    phone = v.check(lambda: parse_vn_mobile(cmd.phone_number))
    email = v.check(lambda: parse_email(cmd.email))
    capture = parse_capture(v, cmd.capture)
    v.raise_if_any()
    assert pid and name and birth and cmd.gender and phone and capture
    check_consistent(pid, birth, cmd.gender)
    require_self_registration_age(birth, now.date())
    declared = Demographics(pid.value, name, birth, cmd.gender)
    code = new_activation_code()
    expires_at = now + ACTIVATION_CODE_TTL
    limits = ctx.send_limits

    def create(r: Repositories) -> Answer | DomainError:
        subject = r.accounts.subject_of(declared.personal_id)
        c = _Call(r, officer, reply, subject, REGISTER_ACTION, now)
        earlier = officer_replay(r, reply, caller, ctx.officer_limits, officer, now)
        if earlier is not None:
            return earlier
        person = r.registry.person(declared.personal_id)
        if not (
            person is not None
            and demographics_match(declared, person.demographics)
            and _matches(ctx, person, capture)
        ):
            return c.refuse(registry_mismatch())
        existing = r.accounts.credential(declared.personal_id)
        if existing.state is AccountState.PENDING:
            pending = AlreadyExists(
                reason="ACCOUNT_PENDING",
                message="an account for this ID number is awaiting activation: the citizen"
                " activates it first, then UpgradeToLevel2 raises it",
            )
            return c.refuse(pending, existing.account_id)
        if existing.state is AccountState.DEPENDANT:
            # UpgradeToLevel2 would answer ACCOUNT_NOT_ACTIVE: say the way that works.
            exists = AlreadyExists(
                reason="ACCOUNT_ALREADY_EXISTS",
                message="this ID number's account is a guardian's dependant: from 14 the"
                " citizen takes it over (Register in the app, then Activate), and"
                " UpgradeToLevel2 raises it once it is active",
            )
            return c.refuse(exists, existing.account_id)
        if existing.account_id is not None:
            exists = AlreadyExists(
                reason="ACCOUNT_ALREADY_EXISTS",
                message="an account exists for this ID number: raise it with UpgradeToLevel2",
            )
            return c.refuse(exists, existing.account_id)
        refused = hit_limits(r, now, [(limits.register_per_phone, phone)])
        if refused is not None:
            return c.refuse(refused)
        # The registry's spelling is authoritative once the match succeeded.
        account = Account(
            id=new_account_id(),
            demographics=person.demographics,
            phone=phone,
            email=email,
            level=AccountLevel.LEVEL_2,
            state=AccountState.PENDING,
            created_at=now,
        )
        r.accounts.add(account)
        r.biometrics.enrol(account.id, capture, now)
        r.activation_codes.add(account.id, code, now, expires_at)
        notice = code_notice(NoticeKind.ACTIVATION_CODE, code, ACTIVATION_CODE_TTL, ctx.language)
        r.outbox.add("sms", phone, notice, now)
        c.audit(account.id, "ok")
        done = Level2Registered(account, "sms", mask_phone(phone), expires_at)
        return reply.finish(r, caller, done, now)

    return await answer_once(uow, reply, caller, create)


def _not_active(state: AccountState) -> DomainError | None:
    try:
        require_state_active(state)
    except DomainError as refused:
        return refused
    return None


async def upgrade_to_level2(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    call: OfficerCall,
    cmd: UpgradeCommand,
    reply: Reply[Account, Answer],
) -> Answer:
    officer = await authenticate_officer(uow, call, OfficerRole.REGISTRATION)
    caller = officer_caller(officer)
    now = ctx.clock()
    v = Violations()
    pid = v.check(lambda: parse_personal_id(cmd.personal_id))
    capture = parse_capture(v, cmd.capture)
    v.raise_if_any()
    assert pid is not None and capture is not None

    def upgrade(r: Repositories) -> Answer | DomainError:
        c = _Call(r, officer, reply, r.accounts.subject_of(pid.value), UPGRADE_ACTION, now)
        earlier = officer_replay(r, reply, caller, ctx.officer_limits, officer, now)
        if earlier is not None:
            return earlier
        account = _upgradable(c, pid.value)
        if isinstance(account, DomainError):
            return account
        if not _matches(ctx, r.registry.person(pid.value), capture):
            return c.refuse(registry_mismatch(), account.id)
        if not r.accounts.raise_level(account.id, AccountLevel.LEVEL_2):
            # Locked, deactivated or raised by a transaction that committed
            # since the read (PostgreSQL): read again, and say which. Before,
            # ABORTED was returned with the call counted, and the officer's
            # retry of it was counted again.
            changed = _upgradable(c, pid.value)
            if isinstance(changed, DomainError):
                return changed
            raise Conflict()  # changed and changed back: rolled back whole, uncounted
        r.biometrics.enrol(account.id, capture, now)
        notice = state_notice(NoticeKind.ACCOUNT_LEVEL_2, ctx.language)
        r.outbox.add("sms", account.phone, notice, now)
        if account.email:
            r.outbox.add("email", account.email, notice, now)
        c.audit(account.id, "ok")
        account.level = AccountLevel.LEVEL_2
        return reply.finish(r, caller, account, now)

    return await answer_once(uow, reply, caller, upgrade)


def _upgradable(c: _Call, personal_id: str) -> Account | DomainError:
    """The active level-1 account of `personal_id`, or the refusal, audited."""
    cred = c.r.accounts.credential(personal_id)
    account = None if cred.account_id is None else c.r.accounts.get(cred.account_id)
    if account is None:
        return c.refuse(_account_not_found())
    if account.level >= AccountLevel.LEVEL_2:
        already = PreconditionFailed(
            reason="ACCOUNT_ALREADY_LEVEL_2", message="the account is level 2 already"
        )
        return c.refuse(already, account.id)
    inactive = _not_active(account.state)
    if inactive is not None:
        return c.refuse(inactive, account.id)
    return account


def _account_not_found() -> NotFound:
    return NotFound(
        reason="ACCOUNT_NOT_FOUND",
        message="no account has this ID number: register it with RegisterLevel2",
    )


async def link_document_for_citizen(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    call: OfficerCall,
    cmd: OfficerLinkCommand,
    reply: Reply[LinkedDocument, Answer],
) -> Answer:
    """An officer links a registry document to the level-2 account of the
    citizen before them: PENDING (registered at the counter, not activated
    yet) or ACTIVE. Answers as LinkDocument does, audited under the officer."""
    officer = await authenticate_officer(uow, call, OfficerRole.REGISTRATION)
    caller = officer_caller(officer)
    now = ctx.clock()
    v = Violations()
    pid = v.check(lambda: parse_personal_id(cmd.personal_id))
    parsed = parse_document(cmd.document, v)
    v.raise_if_any()
    assert pid is not None and parsed is not None
    doc_type, number = parsed
    action = f"{LINK_ACTION}.{doc_type.value}"

    def work(r: Repositories) -> Answer | DomainError:
        c = _Call(r, officer, reply, r.accounts.subject_of(pid.value), action, now)
        earlier = officer_replay(r, reply, caller, ctx.officer_limits, officer, now)
        if earlier is not None:
            return earlier
        account = r.accounts.find_by_personal_id(pid.value)
        if account is None:
            return c.refuse(_account_not_found())
        inactive = None if account.state is AccountState.PENDING else _not_active(account.state)
        if inactive is not None:
            return c.refuse(inactive, account.id)
        try:
            document = link_from_registry(
                r, account.id, account.level, pid.value, doc_type, number, now, officer.id
            )
        except DomainError as refused:
            return c.refuse(refused, account.id)
        c.audit(account.id, "ok")
        return reply.finish(r, caller, document, now)

    return await answer_once(uow, reply, caller, work)
