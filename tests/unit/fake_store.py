"""In-memory implementations of every port in use_cases/ports.py.

Each fake repository answers as its SQL counterpart in store/repositories/
does: the same conditional updates, the same None/False answers and the same
errors. `FakeUnitOfWork` runs a transaction function against the committed
state and puts a snapshot back if it raises, so a use case sees the store's
all-or-nothing behaviour; it counts transactions, and `FakePasswordHashing`
counts hash runs, so tests can compare what two paths cost.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import secrets
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

from eid_service.domain.account import Account, AccountLevel, AccountState
from eid_service.domain.activation import CodePurpose
from eid_service.domain.approval import ApprovalRequest, ApprovalState
from eid_service.domain.audit_event_id import new_event_id
from eid_service.domain.biometric_match import BiometricCapture
from eid_service.domain.citizen import Demographics
from eid_service.domain.credential_policy import (
    SOURCE_WINDOW,
    SUBJECT_WINDOW,
    source_budget,
    wait_before_next_try,
)
from eid_service.domain.dependant import Dependant, take_over_date
from eid_service.domain.errors import Conflict, InvalidInput
from eid_service.domain.linked_document import ATTRIBUTE_DOCUMENT, LinkedDocument
from eid_service.domain.mode_locks import ModeLock
from eid_service.domain.notices import Notice, NoticeKind
from eid_service.domain.officer import DEFAULT_ROLES, Officer, OfficerRole, new_officer
from eid_service.domain.party import (
    CITIZEN_PRESENT_MODES,
    Grant,
    PartyStatus,
    RelyingParty,
    VerifyMode,
)
from eid_service.domain.party_limits import REFILL_SECONDS, WHOLE_TOKEN, TokenBucket
from eid_service.domain.rate_limits import Limit
from eid_service.domain.registry_person import DocumentType, RegistryDocument, RegistryPerson
from eid_service.domain.share import DOCUMENT_ATTRIBUTES, Attribute, SharePolicy, attribute_values
from eid_service.domain.share_grant import ShareGrant, ShareState
from eid_service.domain.signing_key import KeyState
from eid_service.security.keyed_hash import new_secret_token
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.party_cache import PartyCache
from eid_service.use_cases.ports import (
    AccessRecord,
    AccountView,
    ActivationCodeRecord,
    AuditEntry,
    AuditEvent,
    BreakKind,
    BrokenLink,
    ChainCheck,
    ClaimedDelivery,
    DeadLetter,
    DueDelivery,
    IssuedTokens,
    LinkedEntry,
    ListedApproval,
    LiveSession,
    OfficerListing,
    OutgoingMessage,
    PartyRecord,
    RedeemedShare,
    Repositories,
    RequestKey,
    RetryOutcome,
    Reused,
    Rotation,
    SessionInfo,
    SessionLifetimes,
    StoredCredential,
    StoredSigningKey,
    Subject,
    VerificationRecord,
    WebhookTarget,
)
from eid_service.use_cases.signing_keys import SigningKeyCache

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")

TEST_KEY = b"eid unit tests: a fixed, public key"
TOTAL = "*"  # the source under which a subject's total is counted, as in the store


def keyed_digest(purpose: str, text: str) -> bytes:
    return hmac.new(TEST_KEY, f"{purpose}\x00{text}".encode(), hashlib.sha256).digest()


def subject_of(personal_id: str) -> Subject:
    return hashlib.sha256(personal_id.encode()).digest()


class IntegrityViolation(Exception):
    """A taken unique key or a dangling reference: what the database refuses
    with sqlalchemy's IntegrityError (which is not a domain error)."""


class UniqueViolation(IntegrityViolation):
    """A taken unique key where the real unit of work says Conflict (a
    concurrent transaction committed it first): `atomically` does the same."""


# ---- the committed state: one table per dict ---------------------------------


@dataclass
class CodeRow:
    id: str
    account_id: str
    purpose: CodePurpose
    digest: bytes
    created_at: datetime
    expires_at: datetime
    attempts: int = 0
    consumed_at: datetime | None = None
    party_id: str | None = None


@dataclass
class PartyRow:
    party: RelyingParty
    api_key_digest: bytes
    created_at: datetime
    disabled_at: datetime | None = None
    suspended_at: datetime | None = None
    previous_digest: bytes | None = None
    previous_expires_at: datetime | None = None
    key_rotated_at: datetime | None = None

    def record(self) -> PartyRecord:
        return PartyRecord(
            self.party,
            self.created_at,
            self.suspended_at,
            self.previous_expires_at,
            self.key_rotated_at,
        )


@dataclass
class SessionRow:
    account_id: str
    device: str
    access_digest: bytes
    access_expires_at: datetime
    refresh_digest: bytes
    refresh_expires_at: datetime
    created_at: datetime
    last_used_at: datetime
    revoked_at: datetime | None = None
    revoked_reason: str | None = None
    spent: set[bytes] = field(default_factory=set)
    last_spent: bytes | None = None

    def live(self, now: datetime) -> bool:
        return self.revoked_at is None and self.refresh_expires_at > now


@dataclass
class DeliveryRow:
    next_attempt_at: datetime
    state: str = "pending"
    attempts: int = 0
    last_attempt_at: datetime | None = None
    last_error: str | None = None
    sent_at: datetime | None = None


@dataclass
class MessageRow:
    channel: str
    destination: str | None
    notice: Notice | None
    created_at: datetime
    routed_at: datetime | None = None
    sent_at: datetime | None = None
    deliveries: dict[str, DeliveryRow] = field(default_factory=dict)
    party_id: str | None = None


@dataclass
class StoredResponse:
    fingerprint: bytes
    response: bytes
    expires_at: datetime


@dataclass
class ChainedEvent:
    event: AuditEvent
    prev_digest: bytes | None
    digest: bytes


@dataclass
class AttemptRow:
    failures: int
    window_start: datetime
    last_failure_at: datetime


@dataclass
class DependantLink:
    """The guardian-link columns of a dependant's account row."""

    guardian_account_id: str
    notified_at: datetime | None = None
    taken_over_at: datetime | None = None


@dataclass
class FakeState:
    registry: dict[str, RegistryPerson] = field(default_factory=dict)
    deaths: dict[str, date] = field(default_factory=dict)  # personal id -> date of death
    mode_locks: dict[tuple[str, VerifyMode], ModeLock] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)
    dependants: dict[str, DependantLink] = field(default_factory=dict)  # by account id
    codes: dict[str, CodeRow] = field(default_factory=dict)
    parties: dict[str, PartyRow] = field(default_factory=dict)
    party_failures: dict[tuple[str, datetime], int] = field(default_factory=dict)
    sessions: dict[str, SessionRow] = field(default_factory=dict)
    shares: dict[str, ShareGrant] = field(default_factory=dict)
    outbox: dict[str, MessageRow] = field(default_factory=dict)
    idempotency: dict[tuple[str, str], StoredResponse] = field(default_factory=dict)
    audit_events: dict[Subject, list[ChainedEvent]] = field(default_factory=dict)
    audit_heads: dict[Subject, tuple[int, bytes | None]] = field(default_factory=dict)
    attempts: dict[tuple[Subject, str], AttemptRow] = field(default_factory=dict)
    # (limit name, key, window start) -> (hits, window end)
    rate_counters: dict[tuple[str, str, datetime], tuple[int, datetime]] = field(
        default_factory=dict
    )
    officers: dict[str, tuple[Officer, bytes]] = field(default_factory=dict)  # with key digest
    # Every officer ever created: (created, disabled) times.
    officer_times: dict[str, tuple[datetime, datetime | None]] = field(default_factory=dict)
    # Token buckets by key: (tokens, refilled at, in epoch seconds).
    rate_buckets: dict[str, tuple[float, float]] = field(default_factory=dict)
    signing_keys: dict[str, StoredSigningKey] = field(default_factory=dict)
    receipts: dict[str, VerificationRecord] = field(default_factory=dict)
    webhooks: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # party -> (url, at)
    # approval id -> (request, keyed digest of its QR token)
    approvals: dict[str, tuple[ApprovalRequest, bytes | None]] = field(default_factory=dict)
    # account id -> (enrolled templates, enrolled at)
    biometrics: dict[str, tuple[BiometricCapture, datetime]] = field(default_factory=dict)
    # (account id, type, number) -> the linked document
    account_documents: dict[tuple[str, DocumentType, str], LinkedDocument] = field(
        default_factory=dict
    )


def _purge(
    table: dict[K, V],
    doomed: Callable[[V], bool],
    limit: int,
    doomed_key: Callable[[K], bool] = lambda _: True,
) -> int:
    """Deletes at most `limit` rows whose value (and key) are doomed, as the SQL does."""
    keys = [k for k, v in table.items() if doomed_key(k) and doomed(v)][:limit]
    for k in keys:
        del table[k]
    return len(keys)


class _Repository:
    def __init__(self, state: FakeState) -> None:
        self._s = state


# ---- one class per port ------------------------------------------------------


class FakeRegistry(_Repository):
    def find(self, personal_id: str) -> Demographics | None:
        person = self.person(personal_id)
        return None if person is None else person.demographics

    def person(self, personal_id: str) -> RegistryPerson | None:
        if personal_id in self._s.deaths:
            return None
        return self._s.registry.get(personal_id)

    def person_by_passport(self, nationality: str, passport_number: str) -> RegistryPerson | None:
        for pid, person in self._s.registry.items():
            p = person.passport
            if p and (p.nationality, p.number) == (nationality, passport_number):
                return self.person(pid)
        return None

    def wards(self, guardian_id: str) -> list[str]:
        return sorted(
            pid
            for pid, person in self._s.registry.items()
            if guardian_id in person.guardians and pid not in self._s.deaths
        )

    def documents(self, personal_id: str) -> list[RegistryDocument]:
        person = self._s.registry.get(personal_id)
        if person is None:
            return []
        return sorted(person.documents, key=lambda d: (d.doc_type.value, d.number))

    def document(
        self, holder_id: str, doc_type: DocumentType, number: str
    ) -> RegistryDocument | None:
        person = self._s.registry.get(holder_id)
        held = () if person is None else person.documents
        return next((d for d in held if (d.doc_type, d.number) == (doc_type, number)), None)

    def mark_deceased(self, personal_id: str, died_on: date) -> bool:
        if self.find(personal_id) is None:
            return False
        self._s.deaths[personal_id] = died_on
        return True

    def put(self, citizen: Demographics) -> bool:
        return self.put_person(RegistryPerson(citizen))

    def put_person(self, person: RegistryPerson) -> bool:
        pid = person.demographics.personal_id
        if pid in self._s.registry:
            return False
        self._s.registry[pid] = person
        return True


class FakeAccounts(_Repository):
    def add(self, account: Account) -> Subject:
        if account.id in self._s.accounts or self.exists(account.demographics.personal_id):
            raise IntegrityViolation("accounts")
        self._s.accounts[account.id] = replace(account)
        return subject_of(account.demographics.personal_id)

    def exists(self, personal_id: str) -> bool:
        return self._find(personal_id) is not None

    def subject_of(self, personal_id: str) -> Subject:
        return subject_of(personal_id)

    def get(self, account_id: str) -> Account | None:
        found = self._s.accounts.get(account_id)
        return None if found is None else replace(found)  # a copy, like a fresh row

    def hold(self, account_id: str, *, alone: bool = False) -> AccountState | None:
        # One transaction at a time here: the state read is the one that stands.
        found = self._s.accounts.get(account_id)
        return None if found is None else found.state

    def find_by_personal_id(self, personal_id: str) -> Account | None:
        found = self._find(personal_id)
        return None if found is None else replace(found)

    def credential(self, personal_id: str, mode: VerifyMode | None = None) -> StoredCredential:
        found = self._find(personal_id)
        if found is None:
            return StoredCredential(subject_of(personal_id), None, None, None)
        lock = None if mode is None else self._s.mode_locks.get((found.id, mode))
        return StoredCredential(
            subject_of(personal_id), found.id, found.state, found.password_hash, lock
        )

    def credential_and_contact(
        self, personal_id: str, contact: Attribute
    ) -> tuple[StoredCredential, str | None]:
        credential = self.credential(personal_id)
        found = self._find(personal_id)
        if found is None:
            return credential, None
        return credential, found.phone if contact is Attribute.PHONE_NUMBER else found.email

    def view(self, account_id: str, attributes: frozenset[Attribute]) -> AccountView | None:
        found = self._s.accounts.get(account_id)
        if found is None:
            return None
        d = found.demographics
        # A dependant has no phone (kept empty): nothing to release.
        values = attribute_values(
            d,
            attributes,
            phone=found.phone or None,
            email=found.email,
            nationality=found.nationality,
        )
        types = frozenset(ATTRIBUTE_DOCUMENT[a] for a in attributes & DOCUMENT_ATTRIBUTES)
        documents = (
            tuple(FakeAccountDocuments(self._s).of_account(account_id, types)) if types else ()
        )
        return AccountView(
            found.id, subject_of(d.personal_id), found.level, found.state, values, documents
        )

    def credential_and_view(
        self, personal_id: str, mode: VerifyMode, attributes: frozenset[Attribute]
    ) -> tuple[StoredCredential, AccountView | None]:
        credential = self.credential(personal_id, mode)
        if credential.account_id is None:
            return credential, None
        return credential, self.view(credential.account_id, attributes)

    def mark_active(self, account: Account) -> bool:
        stored = self._s.accounts.get(account.id)
        if stored is None or stored.state is not AccountState.PENDING:
            return False
        stored.state = account.state
        stored.password_hash = account.password_hash
        stored.activated_at = account.activated_at
        return True

    def lock(self, account_id: str, now: datetime) -> bool:
        stored = self._s.accounts.get(account_id)
        if stored is None or stored.state is not AccountState.ACTIVE:
            return False
        stored.state = AccountState.LOCKED
        return True

    def unlock(self, account_id: str) -> bool:
        stored = self._s.accounts.get(account_id)
        if stored is None or stored.state is not AccountState.LOCKED:
            return False
        stored.state = AccountState.ACTIVE
        return True

    def deactivate(self, account_id: str, now: datetime) -> bool:
        stored = self._s.accounts.get(account_id)
        if stored is None or stored.state is AccountState.DEACTIVATED:
            return False
        stored.state = AccountState.DEACTIVATED
        return True

    def raise_level(self, account_id: str, level: AccountLevel) -> bool:
        stored = self._s.accounts.get(account_id)
        if stored is None or stored.state is not AccountState.ACTIVE or stored.level >= level:
            return False
        stored.level = level
        return True

    def _find(self, personal_id: str) -> Account | None:
        found = (a for a in self._s.accounts.values() if a.demographics.personal_id == personal_id)
        return next(found, None)


class FakeAccountBiometrics(_Repository):
    def enrol(self, account_id: str, capture: BiometricCapture, now: datetime) -> None:
        if account_id not in self._s.accounts:
            raise IntegrityViolation("account_biometrics.account_id")
        self._s.biometrics[account_id] = (capture, now)

    def of_account(self, account_id: str) -> BiometricCapture | None:
        found = self._s.biometrics.get(account_id)
        return None if found is None else found[0]


class FakeDependants(_Repository):
    def add(self, dependant: Dependant) -> Subject:
        subject = FakeAccounts(self._s).add(dependant.account)
        self._s.dependants[dependant.account.id] = DependantLink(dependant.guardian_account_id)
        return subject

    def get(self, account_id: str) -> Dependant | None:
        link = self._s.dependants.get(account_id)
        account = self._s.accounts.get(account_id)
        if link is None or account is None:
            return None
        return Dependant(
            account=replace(account),
            guardian_account_id=link.guardian_account_id,
            take_over_on=take_over_date(account.demographics.birth_date),
            notified_at=link.notified_at,
            taken_over_at=link.taken_over_at,
        )

    def of_guardian(
        self, guardian_account_id: str, after: str | None, limit: int
    ) -> list[Dependant]:
        found = [
            d
            for account_id, link in self._s.dependants.items()
            if link.guardian_account_id == guardian_account_id and link.taken_over_at is None
            for d in [self.get(account_id)]
            if d is not None
        ]
        found.sort(key=lambda d: (d.account.created_at, d.account.id))
        if after is not None:
            cursor = self._s.accounts.get(after)
            if cursor is None:
                return []
            found = [
                d
                for d in found
                if (d.account.created_at, d.account.id) > (cursor.created_at, cursor.id)
            ]
        return found[:limit]

    def due(self, days: Sequence[date], limit: int) -> list[Dependant]:
        wanted = set(days)
        found = [
            d
            for account_id, link in sorted(self._s.dependants.items())
            if link.notified_at is None
            for d in [self.get(account_id)]
            if d is not None
            and d.account.state is AccountState.DEPENDANT
            and d.take_over_on in wanted
        ]
        return found[:limit]

    def change_guardian(self, account_id: str, former: str, guardian: str) -> bool:
        link = self._s.dependants.get(account_id)
        account = self._s.accounts.get(account_id)
        if link is None or account is None or account.state is not AccountState.DEPENDANT:
            return False
        if link.guardian_account_id != former:
            return False
        link.guardian_account_id = guardian
        return True

    def mark_notified(self, account_id: str, now: datetime) -> bool:
        link = self._s.dependants.get(account_id)
        account = self._s.accounts.get(account_id)
        if link is None or account is None or account.state is not AccountState.DEPENDANT:
            return False
        if link.notified_at is not None:
            return False
        link.notified_at = now
        return True

    def start_take_over(
        self, account_id: str, phone: str, email: str | None, now: datetime
    ) -> bool:
        account = self._s.accounts.get(account_id)
        if account is None or account.state is not AccountState.DEPENDANT:
            return False
        account.state = AccountState.PENDING
        account.phone = phone
        account.email = email
        return True

    def finish_take_over(self, account_id: str, now: datetime) -> str | None:
        link = self._s.dependants.get(account_id)
        if link is None or link.taken_over_at is not None:
            return None
        link.taken_over_at = now
        return link.guardian_account_id


class FakeModeLocks(_Repository):
    def of_account(self, account_id: str) -> list[ModeLock]:
        return [lock for (a, _), lock in self._s.mode_locks.items() if a == account_id]

    def lock(self, account_id: str, mode: VerifyMode, now: datetime) -> None:
        self._require_account(account_id)
        self._s.mode_locks[(account_id, mode)] = ModeLock(mode)

    def unlock(self, account_id: str, mode: VerifyMode, until: datetime | None) -> None:
        self._require_account(account_id)
        if until is None:
            self._s.mode_locks.pop((account_id, mode), None)
        else:
            self._s.mode_locks[(account_id, mode)] = ModeLock(mode, until)

    def _require_account(self, account_id: str) -> None:
        if account_id not in self._s.accounts:
            raise IntegrityViolation("verify_mode_locks.account_id")


def _code_digest(
    account_id: str, code: str, purpose: CodePurpose = CodePurpose.ACTIVATION
) -> bytes:
    return keyed_digest("activation-code", f"{account_id}:{purpose.value}:{code}")


class FakeActivationCodes(_Repository):
    def add(
        self,
        account_id: str,
        code: str,
        now: datetime,
        expires_at: datetime,
        purpose: CodePurpose = CodePurpose.ACTIVATION,
        *,
        party_id: str | None = None,
    ) -> str:
        if account_id not in self._s.accounts:
            raise IntegrityViolation("activation_codes.account_id")
        code_id = "act_" + secrets.token_hex(8)
        digest = _code_digest(account_id, code, purpose)
        self._s.codes[code_id] = CodeRow(
            code_id, account_id, purpose, digest, now, expires_at, party_id=party_id
        )
        return code_id

    def latest_for(
        self,
        account_id: str,
        purpose: CodePurpose = CodePurpose.ACTIVATION,
        *,
        party_id: str | None = None,
    ) -> ActivationCodeRecord | None:
        mine = [
            c
            for c in self._s.codes.values()
            if c.account_id == account_id and c.purpose is purpose and c.party_id == party_id
        ]
        if not mine:
            return None
        c = max(reversed(mine), key=lambda c: c.created_at)  # ties: the last added
        return ActivationCodeRecord(
            c.id, c.account_id, purpose, c.digest, c.expires_at, c.attempts, c.consumed_at
        )

    def recent_for(
        self, account_id: str, purpose: CodePurpose, newest: int
    ) -> list[ActivationCodeRecord]:
        return [
            ActivationCodeRecord(
                c.id, c.account_id, purpose, c.digest, c.expires_at, c.attempts, c.consumed_at
            )
            for c in self._recent(account_id, purpose, newest)
        ]

    def _recent(self, account_id: str, purpose: CodePurpose, newest: int) -> list[CodeRow]:
        mine = [
            c
            for c in self._s.codes.values()
            if c.account_id == account_id and c.purpose is purpose and c.party_id is None
        ]
        # Newest first; ties: the last added first (a stable sort keeps their order).
        return sorted(reversed(mine), key=lambda c: c.created_at, reverse=True)[:newest]

    def matches(self, record: ActivationCodeRecord, code: str) -> bool:
        expected = _code_digest(record.account_id, code, record.purpose)
        return hmac.compare_digest(record.code_digest, expected)

    def any_consumed_matches(self, account_id: str, code: str) -> bool:
        digest = _code_digest(account_id, code)
        return any(
            c.account_id == account_id and c.digest == digest and c.consumed_at is not None
            for c in self._s.codes.values()
        )

    def count_wrong_guess(self, code_id: str, max_attempts: int) -> bool:
        c = self._s.codes.get(code_id)
        if c is None or c.attempts >= max_attempts:
            return False
        c.attempts += 1
        return True

    def count_wrong_guess_on_recent(
        self, account_id: str, purpose: CodePurpose, newest: int, max_attempts: int
    ) -> int:
        counted = [
            c for c in self._recent(account_id, purpose, newest) if c.attempts < max_attempts
        ]
        for c in counted:
            c.attempts += 1
        return len(counted)

    def purge_expired(self, before: datetime, limit: int) -> int:
        return _purge(self._s.codes, lambda c: c.expires_at < before, limit)

    def consume(self, code_id: str, now: datetime, max_attempts: int) -> bool:
        c = self._s.codes.get(code_id)
        if c is None or c.consumed_at is not None or c.expires_at <= now:
            return False
        if c.attempts >= max_attempts:
            return False
        c.consumed_at = now
        c.attempts += 1
        return True


class FakeParties(_Repository):
    def create(self, party: RelyingParty, now: datetime) -> str:
        if party.id in self._s.parties:
            raise IntegrityViolation("relying_parties")
        api_key = new_secret_token("eidk")
        self._s.parties[party.id] = PartyRow(party, keyed_digest("api-key", api_key), now)
        return api_key

    def by_api_key(self, api_key: str, now: datetime) -> RelyingParty | None:
        digest = keyed_digest("api-key", api_key)
        for row in self._live():
            if row.api_key_digest == digest or (
                row.previous_digest == digest
                and row.previous_expires_at is not None
                and row.previous_expires_at > now
            ):
                return row.party
        return None

    def _live(self) -> list[PartyRow]:
        """Undeleted parties, oldest first (as created_at, id orders them)."""
        rows = (p for p in self._s.parties.values() if p.disabled_at is None)
        return sorted(rows, key=lambda p: (p.created_at, p.party.id))

    def _row(self, party_id: str) -> PartyRow | None:
        row = self._s.parties.get(party_id)
        return None if row is None or row.disabled_at is not None else row

    def get(self, party_id: str, *, for_change: bool = False) -> PartyRecord | None:
        row = self._row(party_id)
        return None if row is None else row.record()

    def list_page(self, after: str | None, limit: int) -> list[PartyRecord]:
        rows = self._live()
        if after is not None:
            last = self._s.parties.get(after)
            if last is None:  # the SQL compares with NULL: nothing comes after
                return []
            rows = [p for p in rows if (p.created_at, p.party.id) > (last.created_at, after)]
        return [p.record() for p in rows[:limit]]

    def set_status(self, party_id: str, status: PartyStatus, now: datetime) -> bool:
        row = self._row(party_id)
        if row is None or row.party.status is status:
            return False
        row.party = replace(row.party, status=status)
        row.suspended_at = now if status is PartyStatus.SUSPENDED else None
        return True

    def delete(self, party_id: str, now: datetime) -> bool:
        row = self._row(party_id)
        if row is None:
            return False
        row.disabled_at = now
        return True

    def set_limits(self, party_id: str, rate_per_minute: int, citizen_rate_per_minute: int) -> bool:
        row = self._row(party_id)
        if row is None:
            return False
        row.party = replace(
            row.party,
            rate_per_minute=rate_per_minute,
            citizen_rate_per_minute=citizen_rate_per_minute,
        )
        return True

    def set_scopes(
        self, party_id: str, scopes: frozenset[Attribute], grants: frozenset[Grant] = frozenset()
    ) -> bool:
        row = self._row(party_id)
        if row is None:
            return False
        row.party = replace(row.party, scopes=scopes, grants=grants)
        return True

    def set_client_certificate(self, party_id: str, sha256: bytes | None) -> bool:
        row = self._row(party_id)
        if row is None:
            return False
        row.party = replace(row.party, client_cert_sha256=sha256)
        return True

    def rotate_key(self, party_id: str, overlap: timedelta, now: datetime) -> str | None:
        row = self._row(party_id)
        if row is None:
            return None
        api_key = new_secret_token("eidk")
        row.previous_digest, row.previous_expires_at = row.api_key_digest, now + overlap
        row.api_key_digest = keyed_digest("api-key", api_key)
        row.key_rotated_at = now
        return api_key

    def failures_since(self, party_id: str, since: datetime) -> int:
        return sum(
            n for (p, start), n in self._s.party_failures.items() if p == party_id and start > since
        )

    def record_failure(self, party_id: str, bucket: datetime) -> None:
        key = (party_id, bucket)
        self._s.party_failures[key] = self._s.party_failures.get(key, 0) + 1

    def purge_failures(self, before: datetime, limit: int) -> int:
        return _purge(self._s.party_failures, lambda _: True, limit, lambda key: key[1] < before)


class FakeSessions(_Repository):
    def _issue(
        self, session_id: str, account_id: str, now: datetime, lifetimes: SessionLifetimes
    ) -> IssuedTokens:
        return IssuedTokens(
            session_id,
            account_id,
            new_secret_token("eids"),
            now + lifetimes.access,
            new_secret_token("eidr"),
            now + lifetimes.refresh,
        )

    def open(
        self, account_id: str, device: str, now: datetime, lifetimes: SessionLifetimes
    ) -> IssuedTokens:
        session_id = "ses_" + secrets.token_hex(12)
        t = self._issue(session_id, account_id, now, lifetimes)
        self._s.sessions[session_id] = SessionRow(
            account_id,
            device,
            keyed_digest("session", t.access_token),
            t.access_expires_at,
            keyed_digest("refresh", t.refresh_token),
            t.refresh_expires_at,
            now,
            now,
        )
        return t

    def answered_last(self, refresh_token: str, now: datetime) -> bool | None:
        old = keyed_digest("refresh", refresh_token)
        for row in self._s.sessions.values():
            if old in row.spent and row.live(now):
                return row.last_spent == old
        return None

    def id_of_access_token(self, token: str) -> str | None:
        digest = keyed_digest("session", token)
        found = [i for i, row in self._s.sessions.items() if row.access_digest == digest]
        return found[0] if found else None

    def ended(self, session_id: str, now: datetime) -> str | None:
        row = self._s.sessions.get(session_id)
        if row is None:
            return "expired"
        if row.live(now):
            return None
        return row.revoked_reason or "expired"

    def by_access_token(self, token: str, now: datetime) -> tuple[LiveSession, AccountView] | None:
        digest = keyed_digest("session", token)
        for session_id, row in self._s.sessions.items():
            if row.access_digest == digest and row.revoked_at is None:
                if row.access_expires_at <= now:
                    return None
                account = self._s.accounts[row.account_id]
                view = AccountView(
                    account.id,
                    subject_of(account.demographics.personal_id),
                    account.level,
                    account.state,
                    {},
                )
                return LiveSession(session_id, row.account_id), view
        return None

    def rotate(self, refresh_token: str, now: datetime, lifetimes: SessionLifetimes) -> Rotation:
        old = keyed_digest("refresh", refresh_token)
        for session_id, row in self._s.sessions.items():
            if row.refresh_digest == old and row.live(now):
                t = self._issue(session_id, row.account_id, now, lifetimes)
                row.spent.add(old)
                row.last_spent = old
                row.access_digest = keyed_digest("session", t.access_token)
                row.access_expires_at = t.access_expires_at
                row.refresh_digest = keyed_digest("refresh", t.refresh_token)
                row.refresh_expires_at = t.refresh_expires_at
                row.last_used_at = now
                return t
            if old in row.spent:
                return Reused(session_id, row.account_id)
        return None

    def revoke(self, session_id: str, account_id: str, now: datetime, reason: str) -> bool:
        row = self._s.sessions.get(session_id)
        if row is None or row.account_id != account_id or not row.live(now):
            return False
        row.revoked_at, row.revoked_reason = now, reason
        return True

    def revoke_all(self, account_id: str, now: datetime, reason: str) -> int:
        ids = [i for i, row in self._s.sessions.items() if row.account_id == account_id]
        return sum(self.revoke(i, account_id, now, reason) for i in ids)

    def list_live(
        self, account_id: str, now: datetime, after: str | None, limit: int
    ) -> list[SessionInfo]:
        rows = sorted(
            (
                (row.created_at, i, row)
                for i, row in self._s.sessions.items()
                if row.account_id == account_id and row.live(now)
            ),
            key=lambda item: (item[0], item[1]),
            reverse=True,
        )
        if after is not None:
            # As the SQL's sub-select: a session id that names no row matches nothing.
            marker = self._s.sessions.get(after)
            mark = None if marker is None else (marker.created_at, after)
            rows = [item for item in rows if mark is not None and (item[0], item[1]) < mark]
        return [
            SessionInfo(i, row.device, row.created_at, row.last_used_at, row.refresh_expires_at)
            for _, i, row in rows[:limit]
        ]

    def purge_expired(self, now: datetime, limit: int) -> int:
        return _purge(self._s.sessions, lambda row: row.refresh_expires_at <= now, limit)


class FakeShares(_Repository):
    def add(self, grant: ShareGrant) -> None:
        if grant.id in self._s.shares or grant.account_id not in self._s.accounts:
            raise IntegrityViolation("shares")
        self._s.shares[grant.id] = grant

    def redeem(self, share_id: str, party_id: str, now: datetime) -> RedeemedShare | None:
        g = self._s.shares.get(share_id)
        if g is None or (g.redeemed_at is not None and not g.multi_use) or g.expires_at <= now:
            return None
        if g.revoked_at is not None:
            return None
        if g.audience_party_id not in (None, party_id):
            return None
        self._s.shares[share_id] = replace(
            g,
            redeemed_at=g.redeemed_at or now,
            redeem_count=g.redeem_count + 1,
            last_redeemed_at=now,
        )
        return RedeemedShare(g.id, g.account_id, g.attributes, g.issued_by)

    def revoke_all(self, account_id: str, now: datetime) -> int:
        doomed = [
            g
            for g in self._s.shares.values()
            if g.account_id == account_id
            and (g.redeemed_at is None or g.multi_use)
            and g.revoked_at is None
            and g.expires_at > now
        ]
        for g in doomed:
            self._s.shares[g.id] = replace(g, revoked_at=now)
        return len(doomed)

    def revoke_issued_by(self, account_id: str, now: datetime) -> int:
        doomed = [
            g
            for g in self._s.shares.values()
            if g.issued_by == account_id
            and (g.redeemed_at is None or g.multi_use)
            and g.revoked_at is None
            and g.expires_at > now
        ]
        for g in doomed:
            self._s.shares[g.id] = replace(g, revoked_at=now)
        return len(doomed)

    def revoke(self, share_id: str, account_id: str, now: datetime) -> ShareGrant | None:
        g = self._s.shares.get(share_id)
        if g is None or g.account_id != account_id:
            return None
        if g.state(now) is ShareState.ACTIVE:
            g = self._s.shares[share_id] = replace(g, revoked_at=now)
        return g

    def get(self, share_id: str) -> ShareGrant | None:
        return self._s.shares.get(share_id)

    def page_of(self, account_id: str, after: str | None, limit: int) -> list[ShareGrant]:
        mine = sorted(
            (g for g in self._s.shares.values() if g.account_id == account_id),
            key=lambda g: (g.created_at, g.id),
            reverse=True,
        )
        if after is not None:
            cursor = self._s.shares.get(after)
            if cursor is None:
                return []
            mine = [g for g in mine if (g.created_at, g.id) < (cursor.created_at, cursor.id)]
        return mine[:limit]

    def purge_expired(self, before: datetime, limit: int) -> int:
        return _purge(self._s.shares, lambda grant: grant.expires_at <= before, limit)


class FakeSigningKeys(_Repository):
    def all(self) -> list[StoredSigningKey]:
        return sorted(
            self._s.signing_keys.values(), key=lambda k: (k.record.created_at, k.record.key_id)
        )

    def add(self, key: StoredSigningKey) -> None:
        current = key.record.state is KeyState.CURRENT
        if key.record.key_id in self._s.signing_keys or (
            current and any(k.record.state is KeyState.CURRENT for k in self.all())
        ):
            raise IntegrityViolation("signing_keys")
        self._s.signing_keys[key.record.key_id] = key

    def lock_for_change(self) -> None:
        pass  # the fake runs one transaction at a time

    def retire_current(self, now: datetime) -> str | None:
        for key in self.all():
            if key.record.state is KeyState.CURRENT:
                retired = replace(key.record, retired_at=now)
                self._s.signing_keys[retired.key_id] = replace(key, record=retired)
                return retired.key_id
        return None

    def revoke(self, key_id: str, now: datetime) -> bool:
        key = self._s.signing_keys.get(key_id)
        if key is None or key.record.revoked_at is not None:
            return False
        revoked = replace(key.record, revoked_at=now, retired_at=key.record.retired_at or now)
        self._s.signing_keys[key_id] = replace(key, record=revoked)
        return True


CODE_KINDS = frozenset({NoticeKind.ACTIVATION_CODE, NoticeKind.LOCK_CODE, NoticeKind.UNLOCK_CODE})


class FakeOutbox(_Repository):
    """Deliveries per (message, sender), settled and erased as the store does."""

    def add(
        self,
        channel: str,
        destination: str,
        notice: Notice,
        now: datetime,
        party_id: str | None = None,
    ) -> str:
        message_id = "msg_" + secrets.token_hex(8)
        self._s.outbox[message_id] = MessageRow(
            channel, destination, notice, now, party_id=party_id
        )
        return message_id

    def rehearse(self, channel: str, destination: str, notice: Notice, now: datetime) -> None:
        pass

    def unrouted_ids(self, channel: str, limit: int) -> list[str]:
        rows = [
            (i, m)
            for i, m in self._s.outbox.items()
            if m.channel == channel and m.routed_at is None and m.sent_at is None
        ]
        rows.sort(key=lambda item: item[1].created_at)
        return [i for i, _ in rows[:limit]]

    def route(self, message_id: str, senders: Sequence[str], now: datetime) -> bool:
        m = self._s.outbox.get(message_id)
        if not senders or m is None or m.routed_at is not None or m.sent_at is not None:
            return False
        m.routed_at = now
        m.deliveries = {name: DeliveryRow(next_attempt_at=now) for name in senders}
        return True

    def _pending(self, message_id: str, sender: str) -> tuple[MessageRow, DeliveryRow] | None:
        m = self._s.outbox.get(message_id)
        d = None if m is None else m.deliveries.get(sender)
        if m is None or d is None or d.state != "pending":
            return None
        return m, d

    def due(
        self,
        sender: str,
        now: datetime,
        max_attempts: int,
        limit: int,
        busy_parties: Sequence[str] = (),
    ) -> list[DueDelivery]:
        rows = [
            (d.next_attempt_at, DueDelivery(i, m.party_id))
            for i, m in self._s.outbox.items()
            if (d := m.deliveries.get(sender)) is not None
            and d.state == "pending"
            and d.next_attempt_at <= now
            and d.attempts < max_attempts
            and m.party_id not in busy_parties
        ]
        rows.sort(key=lambda row: row[0])
        return [due for _, due in rows[:limit]]

    def claim(
        self, message_id: str, sender: str, now: datetime, until: datetime, max_attempts: int
    ) -> ClaimedDelivery | None:
        found = self._pending(message_id, sender)
        if found is None:
            return None
        m, d = found
        if d.next_attempt_at > now or d.attempts >= max_attempts:
            return None
        d.attempts, d.next_attempt_at, d.last_attempt_at = d.attempts + 1, until, now
        if m.destination is None or m.notice is None:
            self.mark_dead(message_id, sender, now, "ContentsErased")
            return None
        n = m.notice
        message = OutgoingMessage(message_id, m.channel, n.kind, m.destination, n.subject, n.body)
        return ClaimedDelivery(message, sender, d.attempts)

    def give_back(
        self, message_id: str, sender: str, claimed_at: datetime, until: datetime
    ) -> bool:
        found = self._pending(message_id, sender)
        if found is None:
            return False
        d = found[1]
        if (d.next_attempt_at, d.last_attempt_at) != (until, claimed_at):
            return False
        d.attempts, d.next_attempt_at = d.attempts - 1, claimed_at
        return True

    def mark_sent(self, message_id: str, sender: str, now: datetime) -> None:
        found = self._pending(message_id, sender)
        if found is not None:
            found[1].state, found[1].sent_at, found[1].last_error = "sent", now, None
            self._settle(found[0], now)

    def retry_later(self, message_id: str, sender: str, at: datetime, error: str) -> None:
        found = self._pending(message_id, sender)
        if found is not None:
            found[1].next_attempt_at, found[1].last_error = at, error

    def mark_dead(self, message_id: str, sender: str, now: datetime, error: str) -> None:
        found = self._pending(message_id, sender)
        if found is not None:
            found[1].state, found[1].last_error = "dead", error
            self._settle(found[0], now)

    def bury_exhausted(self, sender: str, now: datetime, max_attempts: int) -> int:
        doomed = [
            i
            for i, m in self._s.outbox.items()
            if (d := m.deliveries.get(sender)) is not None
            and d.state == "pending"
            and d.next_attempt_at <= now
            and d.attempts >= max_attempts
        ]
        for message_id in doomed:
            self.mark_dead(message_id, sender, now, "ClaimLapsed")
        return len(doomed)

    @staticmethod
    def _settle(m: MessageRow, now: datetime) -> None:
        states = [d.state for d in m.deliveries.values()]
        if m.sent_at is not None or "pending" in states:
            return
        m.sent_at = now
        kind = None if m.notice is None else m.notice.kind
        if "dead" not in states or kind is None or kind in CODE_KINDS:
            m.destination, m.notice = None, None

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        letters = [
            DeadLetter(
                message_id=i,
                kind=None if m.notice is None else m.notice.kind,
                channel=m.channel,
                sender=sender,
                attempts=d.attempts,
                last_error=d.last_error,
                created_at=m.created_at,
                last_attempt_at=d.last_attempt_at,
                retriable=m.notice is not None,
            )
            for i, m in self._s.outbox.items()
            for sender, d in sorted(m.deliveries.items())
            if d.state == "dead"
        ]
        letters.sort(key=lambda letter: (letter.created_at, letter.message_id, letter.sender))
        return letters[:limit]

    def retry_dead(self, message_id: str, now: datetime) -> RetryOutcome:
        m = self._s.outbox.get(message_id)
        dead = [] if m is None else [d for d in m.deliveries.values() if d.state == "dead"]
        if m is None or not dead:
            return RetryOutcome.NOT_DEAD
        if m.notice is None:
            return RetryOutcome.ERASED
        for d in dead:
            d.state, d.attempts, d.next_attempt_at, d.last_error = "pending", 0, now, None
        m.sent_at = None
        return RetryOutcome.RETRIED

    def erase_unrouted(self, before: datetime, now: datetime, limit: int) -> int:
        stale = sorted(
            i
            for i, m in self._s.outbox.items()
            if m.routed_at is None and m.sent_at is None and m.created_at < before
        )[:limit]
        for i in stale:
            m = self._s.outbox[i]
            m.destination, m.notice, m.sent_at = None, None, now
        return len(stale)

    def purge_erased(self, before: datetime, limit: int) -> int:
        return _purge(self._s.outbox, lambda m: m.notice is None and m.created_at < before, limit)


class FakeIdempotency(_Repository):
    def find(self, key: RequestKey) -> bytes | None:
        stored = self._s.idempotency.get((key.scope, key.request_id))
        if stored is None:
            return None
        if not hmac.compare_digest(stored.fingerprint, key.fingerprint):
            raise InvalidInput.of(
                "request_id",
                "REQUEST_ID_REUSED",
                "this request_id was already used for a different request",
            )
        return stored.response

    def save(self, key: RequestKey, response: bytes, now: datetime, expires_at: datetime) -> None:
        if (key.scope, key.request_id) in self._s.idempotency:
            raise UniqueViolation("idempotency_records")
        stored = StoredResponse(key.fingerprint, response, expires_at)
        self._s.idempotency[(key.scope, key.request_id)] = stored

    def replace(
        self, key: RequestKey, response: bytes, now: datetime, expires_at: datetime
    ) -> None:
        if (key.scope, key.request_id) in self._s.idempotency:
            stored = StoredResponse(key.fingerprint, response, expires_at)
            self._s.idempotency[(key.scope, key.request_id)] = stored

    def purge_expired(self, now: datetime, limit: int) -> int:
        return _purge(self._s.idempotency, lambda stored: stored.expires_at <= now, limit)


def _canonical(e: AuditEvent, prev: bytes | None) -> str:
    fields = (
        e.id,
        e.account_id,
        e.party_id,
        e.action,
        e.outcome,
        e.created_at,
        e.seq,
        prev,
        e.actor,
        e.reason,
        e.request_id,
        e.trace_id,
    )
    return repr(fields)


class FakeAudit(_Repository):
    def append(self, entry: AuditEntry) -> str:
        seq, prev = self._s.audit_heads.get(entry.subject, (0, None))
        event = AuditEvent(
            id=new_event_id(),
            account_id=entry.account_id,
            party_id=entry.party_id,
            action=entry.action,
            outcome=entry.outcome,
            created_at=entry.at,
            seq=seq + 1,
            actor=entry.actor,
            reason=entry.reason,
            request_id=entry.request_id,
            trace_id=entry.trace_id,
        )
        digest = keyed_digest("audit", _canonical(event, prev))
        chain = self._s.audit_events.setdefault(entry.subject, [])
        chain.append(ChainedEvent(event, prev, digest))
        self._s.audit_heads[entry.subject] = (event.seq, digest)
        return event.id

    def history(self, subject: Subject) -> list[AuditEvent]:
        return [c.event for c in self._s.audit_events.get(subject, [])]

    def check_chain(self, subject: Subject) -> ChainCheck:
        """store/repositories/audit.py's walk: sequence, link, digest, then the head."""
        chain = self._s.audit_events.get(subject, [])
        head_seq, head = self._s.audit_heads.get(subject, (0, None))
        return ChainCheck(len(chain), self._first_break(subject, chain, head_seq, head))

    def subjects_after(self, after: Subject | None, limit: int) -> list[Subject]:
        chained = {s for s, events in self._s.audit_events.items() if events}
        every = sorted(chained | set(self._s.audit_heads))
        return [s for s in every if after is None or s > after][:limit]

    def count_subjects(self) -> int:
        return len(self._s.audit_heads)

    @staticmethod
    def _first_break(
        subject: Subject, chain: list[ChainedEvent], head_seq: int, head: bytes | None
    ) -> BrokenLink | None:
        prev: bytes | None = None
        last: AuditEvent | None = None
        for expected, c in enumerate(chain, 1):
            if c.event.seq > expected:
                return BrokenLink(subject, expected, None, BreakKind.SEQUENCE_GAP)
            if c.event.seq < expected:
                return BrokenLink(subject, c.event.seq, c.event.id, BreakKind.SEQUENCE_GAP)
            if c.prev_digest != prev:
                return BrokenLink(subject, c.event.seq, c.event.id, BreakKind.PREVIOUS_MISMATCH)
            if not hmac.compare_digest(c.digest, keyed_digest("audit", _canonical(c.event, prev))):
                return BrokenLink(subject, c.event.seq, c.event.id, BreakKind.DIGEST_MISMATCH)
            prev, last = c.digest, c.event
        last_seq = 0 if last is None else last.seq
        if head_seq > last_seq:
            return BrokenLink(subject, last_seq + 1, None, BreakKind.HEAD_MISMATCH)
        if head_seq != last_seq or head != prev:
            event_id = None if last is None else last.id
            return BrokenLink(subject, last_seq, event_id, BreakKind.HEAD_MISMATCH)
        return None


class FakeCredentialAttempts(_Repository):
    """store/repositories/attempts.py step by step: the subject's total under
    TOTAL, then the source's count under the budget the total allows."""

    def reserve(self, subject: Subject, source: str, now: datetime) -> timedelta | None:
        total = self._count(subject, TOTAL, now, SUBJECT_WINDOW, budget=None)
        assert total is not None
        budget = source_budget(total)
        if self._count(subject, source, now, SOURCE_WINDOW, budget=budget) is not None:
            return None
        row = self._s.attempts[(subject, source)]
        wait = wait_before_next_try(row.failures, row.last_failure_at, budget, now)
        self._s.attempts[(subject, TOTAL)].failures -= 1  # refused: counted nowhere
        return wait or SOURCE_WINDOW

    def succeeded(self, subject: Subject, source: str) -> None:
        row = self._s.attempts.get((subject, source))
        if row is not None:
            row.failures = 0
        total = self._s.attempts.get((subject, TOTAL))
        if total is not None and total.failures > 0:
            total.failures -= 1

    def purge_lapsed(self, before: datetime, limit: int) -> int:
        return _purge(self._s.attempts, lambda row: row.last_failure_at < before, limit)

    def _count(
        self, subject: Subject, source: str, now: datetime, window: timedelta, *, budget: int | None
    ) -> int | None:
        """The upsert: counts one failure unless the budget is spent; the new count, or None."""
        row = self._s.attempts.get((subject, source))
        if row is None:
            self._s.attempts[(subject, source)] = AttemptRow(1, now, now)
            return 1
        lapsed = row.last_failure_at <= now - window
        if budget is not None and not (lapsed or row.failures < budget):
            return None
        row.failures = 1 if lapsed else row.failures + 1
        row.window_start = now if lapsed else row.window_start
        row.last_failure_at = now
        return row.failures


class FakeRateBuckets(_Repository):
    """store/repositories/rate_buckets.py: the same arithmetic, in memory."""

    def take(
        self, buckets: Sequence[TokenBucket], now: datetime, count: int = 1
    ) -> list[tuple[TokenBucket, float]]:
        if any(count > bucket.capacity for bucket in buckets):
            raise ValueError("more tokens asked for than a bucket holds")
        at = now.timestamp()
        refused = []
        for bucket in buckets:
            tokens, refilled_at = self._s.rate_buckets.get(bucket.key, (bucket.capacity, at))
            available = bucket.available(tokens, refilled_at, at)
            if available >= count - 1 + WHOLE_TOKEN:
                self._s.rate_buckets[bucket.key] = (available - count, at)
            else:
                refused.append((bucket, bucket.wait(tokens, refilled_at, at)))
        return refused

    def purge_full(self, now: datetime, limit: int) -> int:
        before = now.timestamp() - 2 * REFILL_SECONDS
        return _purge(self._s.rate_buckets, lambda row: row[1] <= before, limit)


class FakeRateLimits(_Repository):
    def hit(self, key: str, limit: Limit, now: datetime) -> timedelta | None:
        start = limit.window_start(now)
        counter = (limit.name, key, start)
        end = start + limit.window
        hits, _ = self._s.rate_counters.get(counter, (0, end))
        if hits >= limit.hits:
            return end - now
        self._s.rate_counters[counter] = (hits + 1, end)
        return None

    def take_back(self, key: str, limit: Limit, now: datetime) -> None:
        counter = (limit.name, key, limit.window_start(now))
        hits, end = self._s.rate_counters[counter]
        self._s.rate_counters[counter] = (max(0, hits - 1), end)

    def purge_lapsed(self, now: datetime, limit: int) -> int:
        return _purge(self._s.rate_counters, lambda row: row[1] <= now, limit)


class FakeOfficers(_Repository):
    def create(
        self, name: str, now: datetime, roles: frozenset[OfficerRole] = DEFAULT_ROLES
    ) -> tuple[Officer, str]:
        officer = new_officer(name, roles)
        key = new_secret_token("eido")
        self._s.officers[officer.id] = (officer, keyed_digest("officer-key", key))
        self._s.officer_times[officer.id] = (now, None)
        return officer, key

    def set_roles(self, officer_id: str, roles: frozenset[OfficerRole]) -> bool:
        found = self._s.officers.get(officer_id)
        if found is None or self._s.officer_times[officer_id][1] is not None:
            return False
        self._s.officers[officer_id] = (replace(found[0], roles=roles), found[1])
        return True

    def by_key(self, key: str) -> Officer | None:
        digest = keyed_digest("officer-key", key)
        return next((o for o, d in self._s.officers.values() if d == digest), None)

    def disable(self, officer_id: str, now: datetime) -> bool:
        # A disabled officer's key matches nothing: its digest is dropped.
        if officer_id not in self._s.officers or self._s.officer_times[officer_id][1] is not None:
            return False
        officer, _ = self._s.officers[officer_id]
        self._s.officers[officer_id] = (officer, b"")
        self._s.officer_times[officer_id] = (self._s.officer_times[officer_id][0], now)
        return True

    def list_all(self) -> list[OfficerListing]:
        listed = [
            OfficerListing(officer, *self._s.officer_times[officer_id])
            for officer_id, (officer, _) in self._s.officers.items()
        ]
        return sorted(listed, key=lambda e: (e.created_at, e.officer.id))


class FakeReceipts(_Repository):
    def add(self, record: VerificationRecord) -> None:
        if record.verification_id in self._s.receipts:
            raise IntegrityViolation("verification_receipts.id")
        self._s.receipts[record.verification_id] = record

    def get(self, verification_id: str) -> str | None:
        found = self._s.receipts.get(verification_id)
        return None if found is None else found.receipt

    def history(self, account_id: str, after: str | None, limit: int) -> list[AccessRecord]:
        """The store's query: verify.* audit events of the account, newest first."""
        events = [
            c.event
            for chain in self._s.audit_events.values()
            for c in chain
            if c.event.account_id == account_id and c.event.action.startswith("verify.")
        ]
        events.sort(key=lambda e: (e.created_at, e.id), reverse=True)
        if after is not None:
            pivot = next((e for e in events if e.id == after), None)
            events = (
                []
                if pivot is None
                else [e for e in events if (e.created_at, e.id) < (pivot.created_at, pivot.id)]
            )
        return [self._record(e) for e in events[:limit]]

    def _record(self, e: AuditEvent) -> AccessRecord:
        kept = self._s.receipts.get(e.id)
        party = self._s.parties.get(e.party_id or "")
        return AccessRecord(
            verification_id=e.id,
            party_id=e.party_id or "",
            party_name="" if party is None else party.party.name,
            method=VerifyMode(e.action.removeprefix("verify.")),
            verified=e.outcome == "verified",
            attributes=frozenset() if kept is None else kept.attributes,
            at=e.created_at,
            receipt="" if kept is None else kept.receipt,
            guardian_account_id=e.actor or "",
        )


class FakePartyWebhooks(_Repository):
    def set(self, party_id: str, url: str, now: datetime) -> None:
        if party_id not in self._s.parties:
            raise IntegrityViolation("party_webhooks.party_id")
        self._s.webhooks[party_id] = (url, now)

    def clear(self, party_id: str) -> bool:
        return self._s.webhooks.pop(party_id, None) is not None

    def get(self, party_id: str) -> WebhookTarget | None:
        found = self._s.webhooks.get(party_id)
        row = self._s.parties.get(party_id)
        if found is None or row is None or row.disabled_at is not None:
            return None
        suspended = row.party.status is PartyStatus.SUSPENDED
        return WebhookTarget(party_id, found[0], suspended, found[1])

    def subscribers(self, account_id: str) -> list[str]:
        """The store's query: the mode is the receipt's audit event's action."""
        actions = {f"verify.{m.value}" for m in CITIZEN_PRESENT_MODES}
        present = {
            c.event.id
            for chain in self._s.audit_events.values()
            for c in chain
            if c.event.action in actions
        }
        verified = {
            r.party_id
            for r in self._s.receipts.values()
            if r.account_id == account_id and r.verification_id in present
        }
        return sorted(p for p in verified & self._s.webhooks.keys() if self.get(p) is not None)


class FakeApprovals(_Repository):
    def add(self, request: ApprovalRequest, token: str | None) -> None:
        digest = None if token is None else keyed_digest("approval-token", token)
        taken = [d for _, d in self._s.approvals.values() if d is not None]
        if request.id in self._s.approvals or (digest is not None and digest in taken):
            raise IntegrityViolation("approval_requests")
        if self._s.parties.get(request.party_id) is None:
            raise IntegrityViolation("approval_requests.party_id")
        self._s.approvals[request.id] = (request, digest)

    def get(self, approval_id: str) -> ApprovalRequest | None:
        found = self._s.approvals.get(approval_id)
        return None if found is None else found[0]

    def _by_digest(self, token: str) -> ApprovalRequest | None:
        digest = keyed_digest("approval-token", token)
        return next((a for a, d in self._s.approvals.values() if d == digest), None)

    def by_token(self, token: str) -> ApprovalRequest | None:
        return self._by_digest(token)

    def _put(self, request: ApprovalRequest) -> None:
        self._s.approvals[request.id] = (request, self._s.approvals[request.id][1])

    def claim(self, token: str, account_id: str, subject: Subject, now: datetime) -> str | None:
        a = self._by_digest(token)
        if a is None or a.account_id is not None or a.status(now) is not ApprovalState.PENDING:
            return None
        self._put(replace(a, account_id=account_id, subject=subject))
        return a.id

    def decide(
        self, approval_id: str, account_id: str, state: ApprovalState, now: datetime
    ) -> bool:
        a = self.get(approval_id)
        if a is None or a.account_id != account_id or a.status(now) is not ApprovalState.PENDING:
            return False
        self._put(replace(a, state=state, decided_at=now))
        return True

    def count_wrong_code(self, approval_id: str, max_attempts: int, now: datetime) -> int | None:
        a = self.get(approval_id)
        if a is None or a.status(now) is not ApprovalState.PENDING:
            return None
        attempts = a.code_attempts + 1
        voided = attempts >= max_attempts
        self._put(
            replace(
                a,
                code_attempts=attempts,
                state=ApprovalState.VOIDED if voided else a.state,
                decided_at=now if voided else a.decided_at,
            )
        )
        return max(0, max_attempts - attempts)

    def collect(self, approval_id: str, party_id: str, now: datetime) -> ApprovalRequest | None:
        a = self.get(approval_id)
        if a is None or a.party_id != party_id or a.collected_at is not None:
            return None
        if a.state is ApprovalState.PENDING and now < a.expires_at:
            return None
        collected = replace(a, collected_at=now)
        self._put(collected)
        return collected

    def pending_for(
        self, account_id: str, now: datetime, after: str | None, limit: int
    ) -> list[ListedApproval]:
        names = {
            party_id: row.party.name
            for party_id, row in self._s.parties.items()
            if row.disabled_at is None and row.party.status is PartyStatus.ACTIVE
        }
        found = [
            ListedApproval(a, names[a.party_id])
            for a, _ in self._s.approvals.values()
            if a.account_id == account_id
            and a.status(now) is ApprovalState.PENDING
            and a.party_id in names
        ]
        found.sort(key=lambda f: (f.request.created_at, f.request.id), reverse=True)
        if after is not None:
            pivot = self.get(after)
            if pivot is None:
                return []
            found = [
                f
                for f in found
                if (f.request.created_at, f.request.id) < (pivot.created_at, pivot.id)
            ]
        return found[:limit]

    def purge_expired(self, before: datetime, limit: int) -> int:
        return _purge(self._s.approvals, lambda row: row[0].expires_at <= before, limit)


def _entry_key(account_id: str, doc_type: DocumentType, number: str) -> str:
    """As the store's key: the type and an opaque digest of the number."""
    digest = hashlib.sha256(f"{account_id}:{doc_type.value}:{number}".encode()).hexdigest()
    return f"{doc_type.value}:{digest}"


class FakeAccountDocuments(_Repository):
    def add(self, account_id: str, document: LinkedDocument) -> bool:
        if account_id not in self._s.accounts:
            raise IntegrityViolation("account_documents.account_id")
        key = (account_id, document.doc_type, document.number)
        if key in self._s.account_documents:
            return False
        self._s.account_documents[key] = document
        return True

    def _entries(self, account_id: str) -> list[LinkedEntry]:
        return sorted(
            (
                LinkedEntry(_entry_key(*key), document)
                for key, document in self._s.account_documents.items()
                if key[0] == account_id
            ),
            key=lambda e: e.key,
        )

    def of_account(
        self, account_id: str, types: frozenset[DocumentType] | None = None
    ) -> list[LinkedDocument]:
        return [
            e.document
            for e in self._entries(account_id)
            if types is None or e.document.doc_type in types
        ]

    def page_of(self, account_id: str, after: str | None, limit: int) -> list[LinkedEntry]:
        entries = [e for e in self._entries(account_id) if after is None or e.key > after]
        return entries[:limit]

    def remove(self, account_id: str, doc_type: DocumentType, number: str) -> LinkedDocument | None:
        return self._s.account_documents.pop((account_id, doc_type, number), None)


class FakeRepositories:
    """The repositories of one transaction, all over the same state."""

    def __init__(self, state: FakeState) -> None:
        self.registry = FakeRegistry(state)
        self.accounts = FakeAccounts(state)
        self.activation_codes = FakeActivationCodes(state)
        self.parties = FakeParties(state)
        self.sessions = FakeSessions(state)
        self.shares = FakeShares(state)
        self.outbox = FakeOutbox(state)
        self.idempotency = FakeIdempotency(state)
        self.audit = FakeAudit(state)
        self.attempts = FakeCredentialAttempts(state)
        self.rate_limits = FakeRateLimits(state)
        self.rate_buckets = FakeRateBuckets(state)
        self.officers = FakeOfficers(state)
        self.signing_keys = FakeSigningKeys(state)
        self.receipts = FakeReceipts(state)
        self.approvals = FakeApprovals(state)
        self.mode_locks = FakeModeLocks(state)
        self.webhooks = FakePartyWebhooks(state)
        self.biometrics = FakeAccountBiometrics(state)
        self.dependants = FakeDependants(state)
        self.account_documents = FakeAccountDocuments(state)


class FakeUnitOfWork:
    """Transactions are all-or-nothing and run one at a time; `writes` and
    `reads` count the use cases' `atomically` and `read` calls."""

    def __init__(self) -> None:
        self.state = FakeState()
        self.writes = 0
        self.reads = 0

    @property
    def transactions(self) -> int:
        return self.writes + self.reads

    async def atomically(self, work: Callable[[Repositories], T], *, long: bool = False) -> T:
        self.writes += 1
        await asyncio.sleep(0)  # a real store makes the caller wait
        try:
            return self.run_now(work)
        except UniqueViolation as taken:
            raise Conflict() from taken

    async def read(self, work: Callable[[Repositories], T]) -> T:
        self.reads += 1
        await asyncio.sleep(0)
        # Sees committed state; whatever work changes is thrown away.
        return work(FakeRepositories(copy.deepcopy(self.state)))

    def run_now(self, work: Callable[[Repositories], T]) -> T:
        """One committed transaction, not counted: for setting up and inspecting."""
        snapshot = copy.deepcopy(self.state)
        try:
            return work(FakeRepositories(self.state))
        except BaseException:
            self.state = snapshot
            raise


# ---- the rest of a use case's context ----------------------------------------


def _fake_hash(password: str) -> str:
    text = unicodedata.normalize("NFC", password)
    return "fake-sha256$" + hashlib.sha256(text.encode()).hexdigest()


class FakePasswordHashing:
    """Instant hashing that counts its runs; verify(None, ...) runs (and
    counts) like a real check, and answers False."""

    def __init__(self) -> None:
        self.hashes = 0
        self.verifications = 0

    async def hash(self, password: str) -> str:
        self.hashes += 1
        await asyncio.sleep(0)
        return _fake_hash(password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        self.verifications += 1
        await asyncio.sleep(0)
        return stored_hash is not None and stored_hash == _fake_hash(password)


START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


class FakeClock:
    """Stands still until a test moves it; `monotonic` follows it (for PartyCache)."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta

    def monotonic(self) -> float:
        return self.now.timestamp()


def fake_context(clock: FakeClock, passwords: FakePasswordHashing) -> UseCaseContext:
    return UseCaseContext(
        passwords=passwords,
        signing_keys=SigningKeyCache(SharePolicy(), clock=clock.monotonic),
        fingerprint=lambda b: hashlib.sha256(b).digest(),
        pairwise_subject=lambda party, account: (
            "sub_" + hashlib.sha256(f"{party}\x00{account}".encode()).hexdigest()[:32]
        ),
        clock=clock,
        parties=PartyCache(clock=clock.monotonic),
    )
