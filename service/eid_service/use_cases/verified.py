"""What a Verify answers, and what every successful one does whatever its mode:
an audit entry, the citizen's pairwise subject for the party, a signed
receipt the party keeps and the citizen can read in their access history."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from eid_client.receipts import ReceiptClaims
from eid_service.domain.account import AccountLevel, AccountState, require_state_active
from eid_service.domain.biometric_match import ProbeResult
from eid_service.domain.demographic import DemographicResult
from eid_service.domain.errors import DomainError, PermissionDenied, TooManyAttempts
from eid_service.domain.linked_document import LinkedDocument
from eid_service.domain.mode_locks import mode_locked
from eid_service.domain.party import Grant, RelyingParty, VerifyMode
from eid_service.domain.share import Attribute
from eid_service.security.signing_keys import SigningKeySet
from eid_service.use_cases.call_audit import call_entry
from eid_service.use_cases.context import MAX_PARTY_FAILURES, PARTY_FAILURE_WINDOW, UseCaseContext
from eid_service.use_cases.ports import AccountView, AuditEntry, Repositories, VerificationRecord
from eid_service.use_cases.replies import Reply


@dataclass(frozen=True)
class Verification:
    verified: bool
    method: VerifyMode
    at: datetime
    level: AccountLevel | None = None
    released: dict[Attribute, str] = field(default_factory=dict, repr=False)
    verification_id: str = ""
    # The citizen's pairwise subject for the calling party (when verified).
    subject: str = ""
    # The signed receipt of a successful verification.
    receipt: str = field(default="", repr=False)
    demographic: DemographicResult | None = None
    biometric: ProbeResult | None = None
    # The linked documents released (documents.* scopes).
    documents: tuple[LinkedDocument, ...] = field(default=(), repr=False)


def party_caller(party: RelyingParty) -> str:
    """The request-id scope of a relying party."""
    return f"party:{party.id}"


def require_mode(party: RelyingParty, mode: VerifyMode) -> None:
    """Each party verifies only in the modes its operator allowed."""
    if mode not in party.modes:
        raise PermissionDenied(
            reason="MODE_NOT_ALLOWED",
            message=f"this relying party is not allowed to verify by {mode.value}",
        )


# Party failures are counted in buckets this long; the throttle sums the
# buckets of the last PARTY_FAILURE_WINDOW, a sliding window to within one
# bucket (a fixed window would let a burst straddling its edge pass).
FAILURE_BUCKET_SECONDS = 5


def _bucket(now: datetime) -> datetime:
    """The start of the failure bucket `now` falls in."""
    return now.replace(second=now.second - now.second % FAILURE_BUCKET_SECONDS, microsecond=0)


def throttled(r: Repositories, party: RelyingParty, now: datetime) -> None:
    """Refuses a party with too many failed verifications in the last window."""
    if r.parties.failures_since(party.id, now - PARTY_FAILURE_WINDOW) >= MAX_PARTY_FAILURES:
        raise TooManyAttempts(
            reason="PARTY_THROTTLED",
            message="too many failed verifications from this relying party; slow down",
            metadata={"retry_after_seconds": str(int(PARTY_FAILURE_WINDOW.total_seconds()))},
        )


def record_failure(r: Repositories, party: RelyingParty, now: datetime) -> None:
    """Counts a failed verification against the party's throttle."""
    r.parties.record_failure(party.id, _bucket(now))


def refusal_after_proof(
    state: AccountState, mode_is_locked: bool, mode: VerifyMode
) -> DomainError | None:
    """Why a party that proved the credential (a right password or code) is
    still not told `verified`: the account is not active (locked, pending,
    the citizen deceased), or the citizen locked this mode. Parties that
    proved nothing are told `verified: false` instead, as for a wrong guess."""
    if state is not AccountState.ACTIVE:
        try:
            require_state_active(state)
        except DomainError as refused:
            return refused
    if mode_is_locked:
        return mode_locked(mode)
    return None


def require_grants(party: RelyingParty, grants: frozenset[Grant]) -> None:
    """Scopes that release no attribute (biometric_match) are held or not:
    asking for, or using, one the party does not hold is refused."""
    missing = grants - party.grants
    if missing:
        names = ", ".join(sorted(g.value for g in missing))
        raise PermissionDenied(
            reason="SCOPE_NOT_ALLOWED",
            message=f"this relying party is not allowed the {names} scope",
            metadata={"scope": names},
        )


def wanted_attributes(
    party: RelyingParty, requested: frozenset[Attribute] | None
) -> frozenset[Attribute]:
    """What the party asks for in this call (None: all it may read); asking
    for more than it may read is refused rather than silently trimmed."""
    if requested is None:
        return party.scopes
    beyond = requested - party.scopes
    if beyond:
        raise PermissionDenied(
            reason="SCOPE_NOT_ALLOWED",
            message="this relying party is not allowed some of the scopes it asked for",
        )
    return requested


def record_verified(
    r: Repositories,
    ctx: UseCaseContext,
    keys: SigningKeySet,
    party: RelyingParty,
    view: AccountView,
    method: VerifyMode,
    now: datetime,
    demographic: DemographicResult | None = None,
    *,
    reply: Reply[Any, Any] | None = None,
    biometric: ProbeResult | None = None,
    actor: str | None = None,
) -> Verification:
    """Audits a successful verification of `view` (whose values are what is
    released) and signs its receipt, inside the caller's transaction. The
    call's `reply` gives the audit entry its request and trace ids; `actor`
    is the guardian whose share of a dependant's was redeemed."""
    action = f"verify.{method.value}"
    if reply is None:
        entry = AuditEntry(view.subject, view.id, party.id, action, "verified", now, actor)
    else:
        entry = call_entry(
            reply, view.subject, view.id, party.id, action, "verified", now, actor=actor
        )
    event_id = r.audit.append(entry)
    subject = ctx.pairwise_subject(party.id, view.id)
    released = sorted(a.value for a in view.released)
    receipt = keys.sign_receipt(
        ReceiptClaims(
            issuer=keys.issuer,
            subject=subject,
            audience=party.id,
            issued_at=now.replace(microsecond=0),
            verification_id=event_id,
            mode=method.value,
            level=view.level.name,
            attributes=tuple(released),
            verified=True,
        )
    )
    r.receipts.add(VerificationRecord(event_id, view.id, party.id, view.released, receipt))
    return Verification(
        True,
        method,
        now,
        view.level,
        view.values,
        verification_id=event_id,
        subject=subject,
        receipt=receipt,
        demographic=demographic,
        biometric=biometric,
        documents=view.documents,
    )
