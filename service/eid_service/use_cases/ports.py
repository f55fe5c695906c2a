"""The ports use cases depend on: repositories and a unit of work.

store/ implements them over SQLAlchemy (SQLite or PostgreSQL); tests/unit
implements them in memory. Repository methods are synchronous on purpose:
they run inside one transaction function handed to `UnitOfWork.atomically`,
which cannot await, so no transaction can ever stay open across slow work
(Argon2id, a network call) or be left open by a cancelled call.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Protocol, TypeVar

from eid_service.domain.account import Account, AccountLevel, AccountState
from eid_service.domain.activation import CodePurpose
from eid_service.domain.approval import ApprovalRequest, ApprovalState
from eid_service.domain.biometric_match import BiometricCapture
from eid_service.domain.citizen import Demographics
from eid_service.domain.dependant import Dependant
from eid_service.domain.linked_document import LinkedDocument
from eid_service.domain.mode_locks import ModeLock
from eid_service.domain.notices import Notice, NoticeKind
from eid_service.domain.officer import DEFAULT_ROLES, Officer, OfficerRole
from eid_service.domain.party import Grant, PartyStatus, RelyingParty, VerifyMode
from eid_service.domain.party_limits import TokenBucket
from eid_service.domain.rate_limits import Limit
from eid_service.domain.registry_person import DocumentType, RegistryDocument, RegistryPerson
from eid_service.domain.share import Attribute
from eid_service.domain.share_grant import ShareGrant
from eid_service.domain.signing_key import SigningKeyRecord

T = TypeVar("T")

# An opaque, stable key of the person an ID number names, whether or not it
# has an account (a keyed blind index in the store). Audit chains and
# credential throttles are kept per subject, so unknown ID numbers take
# exactly the same path as real ones.
Subject = bytes


@dataclass(frozen=True)
class StoredCredential:
    """What a password check needs; `account_id` is None for an unknown ID number."""

    subject: Subject
    account_id: str | None
    state: AccountState | None
    password_hash: str | None = field(repr=False)
    # The citizen's lock on the Verify mode asked about (credential(..., mode)).
    mode_lock: ModeLock | None = None

    def mode_locked(self, now: datetime) -> bool:
        return self.mode_lock is not None and self.mode_lock.holds(now)


@dataclass(frozen=True)
class AccountView:
    """An account's status plus the values of only the attributes asked for."""

    id: str
    subject: Subject
    level: AccountLevel
    state: AccountState
    values: dict[Attribute, str] = field(repr=False)
    # The linked documents of the document attributes asked for.
    documents: tuple[LinkedDocument, ...] = field(default=(), repr=False)

    @property
    def released(self) -> frozenset[Attribute]:
        """The attributes this view holds a value of: what releasing it releases."""
        return frozenset(self.values) | frozenset(d.attribute for d in self.documents)


@dataclass(frozen=True)
class ActivationCodeRecord:
    id: str
    account_id: str
    purpose: CodePurpose
    code_digest: bytes = field(repr=False)
    expires_at: datetime
    attempts: int
    consumed_at: datetime | None


@dataclass(frozen=True)
class SessionLifetimes:
    access: timedelta
    refresh: timedelta


@dataclass(frozen=True)
class IssuedTokens:
    session_id: str
    account_id: str
    access_token: str = field(repr=False)
    access_expires_at: datetime
    refresh_token: str = field(repr=False)
    refresh_expires_at: datetime


@dataclass(frozen=True)
class LiveSession:
    id: str
    account_id: str


@dataclass(frozen=True)
class SessionInfo:
    id: str
    device: str = field(repr=False)
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class Reused:
    """A spent refresh token came back: the caller decides whether that ends
    its session (a thief's copy) or not (a retry whose first answer stands)."""

    session_id: str
    account_id: str


# New tokens, a reuse, or None for an unknown, expired or revoked token.
Rotation = IssuedTokens | Reused | None


@dataclass(frozen=True)
class RedeemedShare:
    id: str
    account_id: str
    attributes: frozenset[Attribute]
    # The guardian's account when a guardian made the share for a dependant.
    issued_by: str | None = None


@dataclass(frozen=True)
class OutgoingMessage:
    """A notice claimed for delivery; `id` is its idempotency key downstream."""

    id: str
    channel: str
    kind: NoticeKind
    destination: str = field(repr=False)
    subject: str = field(repr=False)
    body: str = field(repr=False)


@dataclass(frozen=True)
class ClaimedDelivery:
    """One sender's delivery of a message, claimed by one worker; `attempt`
    counts this one (1 for the first)."""

    message: OutgoingMessage
    sender: str
    attempt: int


@dataclass(frozen=True)
class DueDelivery:
    """A delivery that may be attempted now, and the party it is for (None:
    a citizen's message)."""

    message_id: str
    party_id: str | None


@dataclass(frozen=True)
class DeadLetter:
    """A delivery given up on; what an operator sees (no destination, no text)."""

    message_id: str
    kind: NoticeKind | None
    channel: str
    sender: str
    attempts: int
    last_error: str | None
    created_at: datetime
    last_attempt_at: datetime | None
    # False once the contents are erased (one-time codes): it cannot be retried.
    retriable: bool


class RetryOutcome(enum.Enum):
    RETRIED = "retried"
    NOT_DEAD = "not_dead"
    ERASED = "erased"


@dataclass(frozen=True)
class RequestKey:
    """A client-chosen request id in the caller's scope, and what the request said."""

    scope: str
    request_id: str
    fingerprint: bytes = field(repr=False)


@dataclass(frozen=True)
class AuditEntry:
    subject: Subject
    account_id: str | None
    party_id: str | None
    action: str
    outcome: str
    at: datetime
    # Who acted when it was neither the citizen nor a party (an officer's id).
    actor: str | None = None
    # Why, for an outcome that is not a success: a stable reason such as
    # ONE_TIME_CODE_INVALID (never personal data).
    reason: str | None = None
    # The call's client-chosen request id and its W3C trace id, to find the
    # call in the party's and in our own logs.
    request_id: str | None = None
    trace_id: str | None = None


@dataclass(frozen=True)
class AuditEvent:
    id: str
    account_id: str | None
    party_id: str | None
    action: str
    outcome: str
    created_at: datetime
    seq: int
    actor: str | None = None
    reason: str | None = None
    request_id: str | None = None
    trace_id: str | None = None


class BreakKind(enum.Enum):
    """How a subject's audit chain fails to verify, at its first broken link."""

    DIGEST_MISMATCH = "digest_mismatch"  # an event's fields were edited
    SEQUENCE_GAP = "sequence_gap"  # an event is missing (deleted) or out of sequence (inserted)
    PREVIOUS_MISMATCH = "previous_mismatch"  # an event does not link to the one before it
    HEAD_MISMATCH = "head_mismatch"  # the head names no last event: the last removed, or edited


@dataclass(frozen=True)
class BrokenLink:
    """Where a chain first breaks. `seq` is the event's place in the chain
    (for a missing event, the first missing number); `event_id` is None when
    no event is there."""

    subject: Subject
    seq: int
    event_id: str | None
    kind: BreakKind


@dataclass(frozen=True)
class ChainCheck:
    """One subject's chain, checked: how many events it holds, and its first
    broken link (None when every link and the head verify)."""

    events: int
    broken: BrokenLink | None


class Registry(Protocol):
    def find(self, personal_id: str) -> Demographics | None: ...

    def person(self, personal_id: str) -> RegistryPerson | None:
        """Everything the registry holds on a living person (no documents)."""
        ...

    def person_by_passport(self, nationality: str, passport_number: str) -> RegistryPerson | None:
        """The living foreigner holding this passport."""
        ...

    def wards(self, guardian_id: str) -> list[str]:
        """ID numbers of the living children recorded under this guardian."""
        ...

    def documents(self, personal_id: str) -> list[RegistryDocument]:
        """The documents issued to a person."""
        ...

    def document(
        self, holder_id: str, doc_type: DocumentType, number: str
    ) -> RegistryDocument | None:
        """The document of this type and number if the registry records it as
        issued to the person with this ID number; None otherwise, whether no
        such document exists or another person holds it."""
        ...

    def put(self, citizen: Demographics) -> bool:
        """Adds a citizen unless present; True when added."""
        ...

    def put_person(self, person: RegistryPerson) -> bool:
        """Adds a person with guardians and documents unless present; True when added."""
        ...

    def mark_deceased(self, personal_id: str, died_on: date) -> bool:
        """Records the citizen's death; False if no living citizen has the ID
        number. `find` no longer finds them."""
        ...


class Accounts(Protocol):
    def add(self, account: Account) -> Subject: ...

    def exists(self, personal_id: str) -> bool: ...

    def get(self, account_id: str) -> Account | None: ...

    def hold(self, account_id: str, *, alone: bool = False) -> AccountState | None:
        """The account's state, its row held until the transaction ends, so a
        change of it (a lock, a death, a mode lock) is ordered before or after
        this transaction, never across it: a check made outside any
        transaction (Argon2id) is then recorded on the state that stands.
        `alone`: no other transaction may hold it meanwhile (the changes)."""
        ...

    def find_by_personal_id(self, personal_id: str) -> Account | None: ...

    def subject_of(self, personal_id: str) -> Subject:
        """The subject an ID number names (its keyed blind index), computed:
        no statement, and the same for numbers with and without an account."""
        ...

    def credential(self, personal_id: str, mode: VerifyMode | None = None) -> StoredCredential:
        """The stored password of the account an ID number names, or an empty
        credential for an unknown number: the same query either way. With a
        Verify mode, also the citizen's lock on it, in that same query."""
        ...

    def credential_and_contact(
        self, personal_id: str, contact: Attribute
    ) -> tuple[StoredCredential, str | None]:
        """`credential(personal_id)` and the account's registered phone or
        email (`contact`; None without an account or an email) in one query,
        decrypting one value whoever the number names: for a code request."""
        ...

    def view(self, account_id: str, attributes: frozenset[Attribute]) -> AccountView | None:
        """Status and the decrypted values of exactly `attributes`."""
        ...

    def credential_and_view(
        self, personal_id: str, mode: VerifyMode, attributes: frozenset[Attribute]
    ) -> tuple[StoredCredential, AccountView | None]:
        """`credential(personal_id, mode)` and the `view` of its account
        (None for an unknown ID number) in one query, for a check that
        compares stored values: one round trip, known number or not."""
        ...

    def mark_active(self, account: Account) -> bool:
        """Persists `account.activate(...)`; False if it was no longer PENDING."""
        ...

    def lock(self, account_id: str, now: datetime) -> bool:
        """ACTIVE -> LOCKED; False if it was not ACTIVE."""
        ...

    def unlock(self, account_id: str) -> bool:
        """LOCKED -> ACTIVE; False if it was not LOCKED."""
        ...

    def deactivate(self, account_id: str, now: datetime) -> bool:
        """Any state -> DEACTIVATED; False if it was DEACTIVATED already."""
        ...

    def raise_level(self, account_id: str, level: AccountLevel) -> bool:
        """An ACTIVE account below `level` -> `level`; False otherwise (not
        active, or at that level already, meanwhile too)."""
        ...


class AccountBiometrics(Protocol):
    """The biometric templates enrolled on level-2 accounts at a counter,
    sealed at rest; read only to compare with (they never leave the service)."""

    def enrol(self, account_id: str, capture: BiometricCapture, now: datetime) -> None:
        """Keeps the account's templates, replacing any it had."""
        ...

    def of_account(self, account_id: str) -> BiometricCapture | None:
        """The account's enrolled templates; None when it has none."""
        ...


@dataclass(frozen=True)
class LinkedEntry:
    """A linked document and its place in its account's list: an opaque key
    (no document number in it) that pages go on after."""

    key: str
    document: LinkedDocument


class AccountDocuments(Protocol):
    """Documents linked to accounts (domain/linked_document.py), each found by
    account, type and a keyed index of its number; the record sealed."""

    def add(self, account_id: str, document: LinkedDocument) -> bool:
        """Links the document; False when the account has it linked already
        (a concurrent duplicate included: one of them links it)."""
        ...

    def of_account(
        self, account_id: str, types: frozenset[DocumentType] | None = None
    ) -> list[LinkedDocument]:
        """The account's linked documents (of these types; None: all), in list order."""
        ...

    def page_of(self, account_id: str, after: str | None, limit: int) -> list[LinkedEntry]:
        """At most `limit` of the account's linked documents, by type then
        key, after the one whose key is `after`."""
        ...

    def remove(self, account_id: str, doc_type: DocumentType, number: str) -> LinkedDocument | None:
        """Unlinks the document; what was linked, or None if it was not."""
        ...


class Dependants(Protocol):
    """Children's accounts under a guardian's (domain/dependant.py). A
    dependant is an account (Accounts finds it too) plus its guardian link;
    the day it turns 14 is looked up by a keyed index, never stored in clear."""

    def add(self, dependant: Dependant) -> Subject:
        """Stores the DEPENDANT account and its link to the guardian."""
        ...

    def get(self, account_id: str) -> Dependant | None:
        """The account with its guardian link; None for an account no guardian
        registered."""
        ...

    def of_guardian(
        self, guardian_account_id: str, after: str | None, limit: int
    ) -> list[Dependant]:
        """The guardian's dependants not taken over yet, oldest registration
        first, after the dependant with account id `after`."""
        ...

    def due(self, days: Sequence[date], limit: int) -> list[Dependant]:
        """DEPENDANT accounts whose 14th birthday is one of `days` and whose
        guardian has not been told yet."""
        ...

    def mark_notified(self, account_id: str, now: datetime) -> bool:
        """Records that the guardian was told, once (a conditional UPDATE:
        False when another worker did it first)."""
        ...

    def start_take_over(
        self, account_id: str, phone: str, email: str | None, now: datetime
    ) -> bool:
        """DEPENDANT -> PENDING with the child's own phone and email; False if
        it was no longer DEPENDANT."""
        ...

    def finish_take_over(self, account_id: str, now: datetime) -> str | None:
        """Ends the guardian's link once the child activated the account; the
        guardian's account id, or None if no guardian managed it."""
        ...

    def change_guardian(self, account_id: str, former: str, guardian: str) -> bool:
        """Links a DEPENDANT account to another guardian (a conditional UPDATE:
        False if it is no longer DEPENDANT or no longer `former`'s)."""
        ...


class ModeLocks(Protocol):
    """The citizen's locks on single Verify modes (domain/mode_locks.py)."""

    def of_account(self, account_id: str) -> list[ModeLock]: ...

    def lock(self, account_id: str, mode: VerifyMode, now: datetime) -> None:
        """Locks the mode, ending any temporary unlock of it."""
        ...

    def unlock(self, account_id: str, mode: VerifyMode, until: datetime | None) -> None:
        """Unlocks the mode for good (None), or until `until` and locked from then on."""
        ...


class ActivationCodes(Protocol):
    """One-time codes sent to an account's phone or email, per purpose: the
    newest code of a purpose counts (a new one voids the old), or for lock
    and unlock codes any of the few newest (`recent_for`)."""

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
        """Keeps a new code; `party_id` binds it to the relying party it was sent for."""
        ...

    def latest_for(
        self,
        account_id: str,
        purpose: CodePurpose = CodePurpose.ACTIVATION,
        *,
        party_id: str | None = None,
    ) -> ActivationCodeRecord | None:
        """The newest code of this purpose (and of this party, for party-bound codes)."""
        ...

    def recent_for(
        self, account_id: str, purpose: CodePurpose, newest: int
    ) -> list[ActivationCodeRecord]:
        """The `newest` most recent codes of this purpose bound to no party, newest first."""
        ...

    def matches(self, record: ActivationCodeRecord, code: str) -> bool: ...

    def any_consumed_matches(self, account_id: str, code: str) -> bool: ...

    def count_wrong_guess(self, code_id: str, max_attempts: int) -> bool:
        """Counts one wrong guess; False when the code was already out of attempts."""
        ...

    def count_wrong_guess_on_recent(
        self, account_id: str, purpose: CodePurpose, newest: int, max_attempts: int
    ) -> int:
        """Counts one wrong guess against each of `recent_for`'s codes not yet
        out of attempts, in one statement; how many were counted (0: every
        one is out of attempts, or there is none)."""
        ...

    def consume(self, code_id: str, now: datetime, max_attempts: int) -> bool:
        """Uses the code once (counted as an attempt); False when it was used,
        expired or out of attempts meanwhile."""
        ...

    def purge_expired(self, before: datetime, limit: int) -> int:
        """Forgets at most `limit` codes that expired before `before`."""
        ...


@dataclass(frozen=True)
class PartyRecord:
    """A party as an operator sees it (a deleted party has none)."""

    party: RelyingParty
    created_at: datetime
    suspended_at: datetime | None
    # When the key before the last rotation stops (or stopped) working; None if never rotated.
    previous_key_expires_at: datetime | None
    # When a rotation made the current key; None: made when the party was
    # created (or by a rotation before this was recorded).
    key_rotated_at: datetime | None = None


class Parties(Protocol):
    """Relying parties and their API keys, stored only as keyed digests.
    Deletion is soft (audit events and shares name the party): a deleted
    party is found by no method here."""

    def create(self, party: RelyingParty, now: datetime) -> str:
        """Stores a new party; its API key, to be shown once (never stored)."""
        ...

    def by_api_key(self, api_key: str, now: datetime) -> RelyingParty | None:
        """The party whose current key this is, or whose previous key until it
        expires; SUSPENDED parties too (the caller refuses them)."""
        ...

    def get(self, party_id: str, *, for_change: bool = False) -> PartyRecord | None:
        """The undeleted party; `for_change`: held until the transaction ends,
        so a concurrent change waits and reads this one's outcome."""
        ...

    def list_page(self, after: str | None, limit: int) -> list[PartyRecord]:
        """Parties, oldest first, after the party with id `after`."""
        ...

    def set_status(self, party_id: str, status: PartyStatus, now: datetime) -> bool:
        """False if no party has that id or it has that status already."""
        ...

    def delete(self, party_id: str, now: datetime) -> bool:
        """False if no party has that id."""
        ...

    def set_limits(self, party_id: str, rate_per_minute: int, citizen_rate_per_minute: int) -> bool:
        """New rate limits; False if no party has that id."""
        ...

    def set_scopes(
        self, party_id: str, scopes: frozenset[Attribute], grants: frozenset[Grant] = frozenset()
    ) -> bool:
        """The attributes it may read (and the grants it holds) from now on;
        False if no party has that id."""
        ...

    def set_client_certificate(self, party_id: str, sha256: bytes | None) -> bool:
        """Binds the party to the client certificate with this SHA-256 (of its
        DER), or unbinds it (None); False if no party has that id."""
        ...

    def rotate_key(self, party_id: str, overlap: timedelta, now: datetime) -> str | None:
        """A new current key (to be shown once); the current one becomes the
        previous key until now + overlap, replacing any previous one; the new
        key's key_rotated_at is `now`. None if no party has that id."""
        ...

    def failures_since(self, party_id: str, since: datetime) -> int:
        """Failed verifications of the party in buckets that began after `since`."""
        ...

    def record_failure(self, party_id: str, bucket: datetime) -> None:
        """Counts one failure in the bucket beginning then (spread over rows: no hot row)."""
        ...

    def purge_failures(self, before: datetime, limit: int) -> int: ...


class Sessions(Protocol):
    def open(
        self, account_id: str, device: str, now: datetime, lifetimes: SessionLifetimes
    ) -> IssuedTokens:
        """A new signed-in device with a fresh access and refresh token."""
        ...

    def answered_last(self, refresh_token: str, now: datetime) -> bool | None:
        """Whether spending `refresh_token` was its session's last refresh
        (the tokens it was answered with are still the current ones); None
        once that session has ended (or for a token never spent)."""
        ...

    def id_of_access_token(self, token: str) -> str | None:
        """The session whose current access token `token` is, live or ended
        (a request-id scope that outlasts the token's refresh)."""
        ...

    def ended(self, session_id: str, now: datetime) -> str | None:
        """None while the session is live; once it is not, why: the reason it
        was revoked with, or "expired" (its refresh lifetime ran out, or it is
        gone)."""
        ...

    def by_access_token(self, token: str, now: datetime) -> tuple[LiveSession, AccountView] | None:
        """The unrevoked session whose unexpired access token this is, and its
        account (no attribute values): one look-up, as every citizen call needs both."""
        ...

    def rotate(self, refresh_token: str, now: datetime, lifetimes: SessionLifetimes) -> Rotation:
        """Exchanges a refresh token for new tokens, once: the old one is spent.
        A spent token presented again is `Reused` (nothing is changed)."""
        ...

    def revoke(self, session_id: str, account_id: str, now: datetime, reason: str) -> bool:
        """Ends one of the account's sessions; False if none was live."""
        ...

    def revoke_all(self, account_id: str, now: datetime, reason: str) -> int: ...

    def list_live(
        self, account_id: str, now: datetime, after: str | None, limit: int
    ) -> list[SessionInfo]:
        """Unrevoked sessions, newest first, from after the session id `after`."""
        ...

    def purge_expired(self, now: datetime, limit: int) -> int: ...


class Shares(Protocol):
    def add(self, grant: ShareGrant) -> None: ...

    def redeem(self, share_id: str, party_id: str, now: datetime) -> RedeemedShare | None:
        """Redeems an unexpired, unrevoked share meant for this party (or for
        anyone), not yet redeemed unless it is multi-use, in one conditional
        UPDATE that also counts the redemption; None when it cannot be redeemed."""
        ...

    def revoke_all(self, account_id: str, now: datetime) -> int:
        """Ends every unredeemed, unexpired share of the account."""
        ...

    def revoke_issued_by(self, account_id: str, now: datetime) -> int:
        """Ends every unredeemed, unexpired share the account made as a
        guardian, for its dependants."""
        ...

    def revoke(self, share_id: str, account_id: str, now: datetime) -> ShareGrant | None:
        """Revokes the account's share if it is not revoked yet; returns it as
        it now is, or None if the account has no such share."""
        ...

    def get(self, share_id: str) -> ShareGrant | None: ...

    def page_of(self, account_id: str, after: str | None, limit: int) -> list[ShareGrant]:
        """The account's shares, newest first, after the share with id `after`."""
        ...

    def purge_expired(self, before: datetime, limit: int) -> int: ...


class Outbox(Protocol):
    """Messages and their deliveries: one per (message, sender), each with its
    own state (pending, sent, dead), so one failing sender never makes
    another resend. A message's contents are erased once no delivery is
    pending, unless one is dead and the message carries no one-time code."""

    def add(
        self,
        channel: str,
        destination: str,
        notice: Notice,
        now: datetime,
        party_id: str | None = None,
    ) -> str:
        """`party_id`: the party a status event is for, stored in clear too."""
        ...

    def rehearse(self, channel: str, destination: str, notice: Notice, now: datetime) -> None:
        """The work of `add` (both values sealed, the insert run) keeping
        nothing: a message not sent costs what one sent does."""
        ...

    def unrouted_ids(self, channel: str, limit: int) -> list[str]:
        """Messages of the channel that have no deliveries yet, oldest first."""
        ...

    def route(self, message_id: str, senders: Sequence[str], now: datetime) -> bool:
        """Gives the message one pending delivery per sender, once (a
        conditional UPDATE: a concurrent worker's call returns False)."""
        ...

    def due(
        self,
        sender: str,
        now: datetime,
        max_attempts: int,
        limit: int,
        busy_parties: Sequence[str] = (),
    ) -> list[DueDelivery]:
        """Deliveries by `sender` that may be attempted now, longest due
        first, leaving out those for `busy_parties` (a handful)."""
        ...

    def claim(
        self, message_id: str, sender: str, now: datetime, until: datetime, max_attempts: int
    ) -> ClaimedDelivery | None:
        """Takes the delivery until `until` and counts an attempt, in one
        conditional UPDATE; None when another worker has it or it is done."""
        ...

    def give_back(
        self, message_id: str, sender: str, claimed_at: datetime, until: datetime
    ) -> bool:
        """Undoes the claim made at `claimed_at` until `until` if the delivery
        still holds exactly that one: due again, its attempt not counted (its
        worker never heard the claim commit, so never sent). True if it did."""
        ...

    def mark_sent(self, message_id: str, sender: str, now: datetime) -> None: ...

    def retry_later(self, message_id: str, sender: str, at: datetime, error: str) -> None: ...

    def mark_dead(self, message_id: str, sender: str, now: datetime, error: str) -> None: ...

    def bury_exhausted(self, sender: str, now: datetime, max_attempts: int) -> int:
        """Deliveries out of attempts whose last claim lapsed (the worker
        died mid-send) become dead; how many."""
        ...

    def dead_letters(self, limit: int) -> list[DeadLetter]: ...

    def retry_dead(self, message_id: str, now: datetime) -> RetryOutcome:
        """Makes the message's dead deliveries pending again, attempts from 0."""
        ...

    def erase_unrouted(self, before: datetime, now: datetime, limit: int) -> int:
        """Erases and settles at most `limit` messages from before `before` that
        no sender ever took (none is configured for their channel)."""
        ...

    def purge_erased(self, before: datetime, limit: int) -> int:
        """Forgets at most `limit` messages from before `before` whose contents
        are gone, with their deliveries."""
        ...


class Idempotency(Protocol):
    def find(self, key: RequestKey) -> bytes | None:
        """The stored response for this request id, None if it is new;
        InvalidInput REQUEST_ID_REUSED if it was used for another request."""
        ...

    def save(
        self, key: RequestKey, response: bytes, now: datetime, expires_at: datetime
    ) -> None: ...

    def replace(
        self, key: RequestKey, response: bytes, now: datetime, expires_at: datetime
    ) -> None:
        """The stored response of a request id that has one, replaced."""
        ...

    def purge_expired(self, now: datetime, limit: int) -> int: ...


class Audit(Protocol):
    def append(self, entry: AuditEntry) -> str:
        """Appends to the subject's hash chain; returns the event id."""
        ...

    def history(self, subject: Subject) -> list[AuditEvent]: ...

    def check_chain(self, subject: Subject) -> ChainCheck:
        """Verifies every link of the subject's chain and its head, in one
        consistent read (an append committing meanwhile is no false alarm)."""
        ...

    def subjects_after(self, after: Subject | None, limit: int) -> list[Subject]:
        """Subjects with a chain head or events, in byte order, after `after`:
        the whole log is walked page by page."""
        ...

    def count_subjects(self) -> int:
        """How many chain heads there are (a progress total)."""
        ...


class CredentialAttempts(Protocol):
    def reserve(self, subject: Subject, source: str, now: datetime) -> timedelta | None:
        """Counts one attempt as failed before it is checked, atomically, if
        the source may still try this subject (domain.credential_policy);
        None when counted, else how long the source must wait."""
        ...

    def succeeded(self, subject: Subject, source: str) -> None:
        """A right password: the source's count starts again, and the
        reserved failure is taken back from the subject's total."""
        ...

    def purge_lapsed(self, before: datetime, limit: int) -> int:
        """Forgets at most `limit` counts whose last failure is older than `before`."""
        ...


@dataclass(frozen=True)
class OfficerListing:
    """An officer as the operator's list shows it (never the key)."""

    officer: Officer
    created_at: datetime
    # None while the key works.
    disabled_at: datetime | None


class Officers(Protocol):
    def create(
        self, name: str, now: datetime, roles: frozenset[OfficerRole] = DEFAULT_ROLES
    ) -> tuple[Officer, str]:
        """A new officer and its key (shown once; stored only as a digest);
        InvalidInput, before anything is written, if the name is not one."""
        ...

    def set_roles(self, officer_id: str, roles: frozenset[OfficerRole]) -> bool:
        """The enabled officer's roles from now on; False if no enabled officer has the id."""
        ...

    def by_key(self, key: str) -> Officer | None:
        """The enabled officer this key belongs to."""
        ...

    def disable(self, officer_id: str, now: datetime) -> bool:
        """The officer's key stops working at once; False if no enabled officer has the id."""
        ...

    def list_all(self) -> list[OfficerListing]:
        """Every officer ever created, disabled ones too, oldest first."""
        ...


@dataclass(frozen=True)
class StoredSigningKey:
    """A signing key as stored: its record and the raw 32-byte private key."""

    record: SigningKeyRecord
    private_key: bytes = field(repr=False)


class SigningKeys(Protocol):
    """Share-signing keys; private halves are kept encrypted."""

    def all(self) -> list[StoredSigningKey]:
        """Every key, oldest first."""
        ...

    def add(self, key: StoredSigningKey) -> None:
        """Adds a key (a second CURRENT key, or a taken id, is a Conflict)."""
        ...

    def lock_for_change(self) -> None:
        """First in a transaction that changes the keys: another such
        transaction waits for this one and then reads what it wrote."""
        ...

    def retire_current(self, now: datetime) -> str | None:
        """Retires the current key; its id, or None if there was none."""
        ...

    def revoke(self, key_id: str, now: datetime) -> bool:
        """Revokes a key (retiring it too); False if unknown or revoked already."""
        ...


class RateLimits(Protocol):
    def hit(self, key: str, limit: Limit, now: datetime) -> timedelta | None:
        """Counts one hit for `key` under `limit` unless it is spent; None when
        counted, else how long until the window ends. Atomic across processes."""
        ...

    def take_back(self, key: str, limit: Limit, now: datetime) -> None:
        """Uncounts a hit `hit` counted in this transaction."""
        ...

    def purge_lapsed(self, now: datetime, limit: int) -> int: ...


class RateBuckets(Protocol):
    """Token buckets shared by every server process (domain/party_limits.py)."""

    def take(
        self, buckets: Sequence[TokenBucket], now: datetime, count: int = 1
    ) -> list[tuple[TokenBucket, float]]:
        """Takes `count` tokens from each bucket that has them, in one
        statement; the buckets that had not, each with the seconds until its
        next token (empty when every bucket gave). A caller refused by any
        raises, so that its transaction gives back what the others gave."""
        ...

    def purge_full(self, now: datetime, limit: int) -> int:
        """Forgets at most `limit` buckets idle long enough to be full again
        (a missing bucket is a full one)."""
        ...


@dataclass(frozen=True)
class VerificationRecord:
    """What is kept of a successful verification besides its audit event."""

    verification_id: str
    account_id: str
    party_id: str
    attributes: frozenset[Attribute]
    receipt: str = field(repr=False)


@dataclass(frozen=True)
class AccessRecord:
    """One verification attempt as the citizen's access history shows it."""

    verification_id: str
    party_id: str
    party_name: str
    method: VerifyMode
    verified: bool
    attributes: frozenset[Attribute]
    at: datetime
    receipt: str = field(repr=False)
    # The guardian's account, when the guardian made the share redeemed (a
    # dependant's): the audit event's actor.
    guardian_account_id: str = ""


class Receipts(Protocol):
    def add(self, record: VerificationRecord) -> None: ...

    def get(self, verification_id: str) -> str | None:
        """The receipt of a successful verification."""
        ...

    def history(self, account_id: str, after: str | None, limit: int) -> list[AccessRecord]:
        """The account's verification attempts, newest first, after the one with
        id `after` (None: from the newest)."""
        ...


@dataclass(frozen=True)
class WebhookTarget:
    """Where a party's status events go, as set by the party or an operator."""

    party_id: str
    url: str = field(repr=False)  # may carry the party's own token
    suspended: bool  # its party is suspended: events wait
    updated_at: datetime


class PartyWebhooks(Protocol):
    """Relying parties' status webhooks (one URL per party, sealed at rest)."""

    def set(self, party_id: str, url: str, now: datetime) -> None:
        """Sets or replaces the party's URL."""
        ...

    def clear(self, party_id: str) -> bool:
        """False if the party had none."""
        ...

    def get(self, party_id: str) -> WebhookTarget | None:
        """None when the party has no webhook or is deleted."""
        ...

    def subscribers(self, account_id: str) -> list[str]:
        """Ids of the undeleted parties with a webhook that hold a receipt of a
        successful verification of the account in one of CITIZEN_PRESENT_MODES
        (not a demographic match alone), in id order."""
        ...


@dataclass(frozen=True)
class ListedApproval:
    """A pending approval request as the citizen's app lists it."""

    request: ApprovalRequest
    party_name: str


class Approvals(Protocol):
    """Approval requests on the citizen's device (domain/approval.py); every
    change of state is one conditional UPDATE, so concurrent decisions,
    claims and collections have one winner across processes."""

    def add(self, request: ApprovalRequest, token: str | None) -> None:
        """Keeps a new request; `token` (QR variant) only as a keyed digest."""
        ...

    def get(self, approval_id: str) -> ApprovalRequest | None: ...

    def by_token(self, token: str) -> ApprovalRequest | None: ...

    def claim(self, token: str, account_id: str, subject: Subject, now: datetime) -> str | None:
        """Binds an unclaimed, pending, unexpired QR request to the account;
        its id, or None."""
        ...

    def decide(
        self, approval_id: str, account_id: str, state: ApprovalState, now: datetime
    ) -> bool:
        """PENDING -> `state` for the account's unexpired request; False if it
        was not pending (decided meanwhile) or has expired."""
        ...

    def count_wrong_code(self, approval_id: str, max_attempts: int, now: datetime) -> int | None:
        """Counts a wrong verification code on a pending, unexpired request,
        voiding it at `max_attempts`; the attempts left, or None if it was not
        pending."""
        ...

    def collect(self, approval_id: str, party_id: str, now: datetime) -> ApprovalRequest | None:
        """Marks the party's decided (or expired) request collected, once; the
        request as it was decided, or None (pending, collected already, or not
        this party's)."""
        ...

    def pending_for(
        self, account_id: str, now: datetime, after: str | None, limit: int
    ) -> list[ListedApproval]:
        """The account's pending, unexpired requests of live, active parties,
        newest first, after the request with id `after`."""
        ...

    def purge_expired(self, before: datetime, limit: int) -> int: ...


class Repositories(Protocol):
    """The repositories of one transaction."""

    @property
    def registry(self) -> Registry: ...
    @property
    def accounts(self) -> Accounts: ...
    @property
    def activation_codes(self) -> ActivationCodes: ...
    @property
    def parties(self) -> Parties: ...
    @property
    def sessions(self) -> Sessions: ...
    @property
    def shares(self) -> Shares: ...
    @property
    def outbox(self) -> Outbox: ...
    @property
    def idempotency(self) -> Idempotency: ...
    @property
    def audit(self) -> Audit: ...
    @property
    def attempts(self) -> CredentialAttempts: ...
    @property
    def rate_limits(self) -> RateLimits: ...
    @property
    def rate_buckets(self) -> RateBuckets: ...
    @property
    def officers(self) -> Officers: ...
    @property
    def signing_keys(self) -> SigningKeys: ...
    @property
    def receipts(self) -> Receipts: ...
    @property
    def approvals(self) -> Approvals: ...
    @property
    def mode_locks(self) -> ModeLocks: ...
    @property
    def webhooks(self) -> PartyWebhooks: ...
    @property
    def biometrics(self) -> AccountBiometrics: ...
    @property
    def dependants(self) -> Dependants: ...
    @property
    def account_documents(self) -> AccountDocuments: ...


class UnitOfWork(Protocol):
    """The one owner of transactions.

    `atomically(work)` runs `work` in one transaction: committed durably
    before it returns work's result, rolled back if work raises (the
    exception propagates; a unique key taken by a concurrent transaction
    comes out as domain.errors.Conflict). How commits become durable (group
    commit, a write lock) is the implementation's business. `long` marks
    a transaction that touches many rows (a bulk load, a sweep, a purge
    page): the implementation keeps it from holding up the calls being
    served (on SQLite it runs on the writer thread, not the event loop)."""

    async def atomically(self, work: Callable[[Repositories], T], *, long: bool = False) -> T: ...

    async def read(self, work: Callable[[Repositories], T]) -> T:
        """Runs `work` in a read-only transaction."""
        ...
