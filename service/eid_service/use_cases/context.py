"""What every use case may use besides the unit of work."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from eid_service.domain.biometric_match import MatchThresholds
from eid_service.domain.notices import Language
from eid_service.domain.portrait import PortraitPolicy
from eid_service.domain.rate_limits import OfficerLimits, SendLimits
from eid_service.domain.share import SharePolicy
from eid_service.limits import Limits
from eid_service.use_cases.admission import Admission
from eid_service.use_cases.approval_waits import ApprovalWaits
from eid_service.use_cases.keyed_locks import KeyedLocks
from eid_service.use_cases.party_cache import PartyCache
from eid_service.use_cases.party_gate import PartyGate
from eid_service.use_cases.signing_keys import SigningKeyCache
from eid_service.use_cases.wakeups import Wakeups

# Failed verifications per relying party (per one-minute window) before it is paused.
MAX_PARTY_FAILURES = 100
PARTY_FAILURE_WINDOW = timedelta(minutes=1)


def utc_now() -> datetime:
    return datetime.now(UTC)


class PasswordHashing(Protocol):
    async def hash(self, password: str) -> str: ...

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """False for None, after as much work as a real check."""
        ...


@dataclass(frozen=True)
class UseCaseContext:
    passwords: PasswordHashing
    # The share-signing keys, read from the store every few seconds.
    signing_keys: SigningKeyCache
    # Keyed digest of a request's bytes (request ids are matched to what they asked).
    fingerprint: Callable[[bytes], bytes]
    # The citizen's pairwise subject for a party: (party id, account id) -> subject.
    pairwise_subject: Callable[[str, str], str]
    clock: Callable[[], datetime] = utc_now
    # The language of SMS and email texts.
    language: Language = Language.VIETNAMESE
    send_limits: SendLimits = field(default_factory=SendLimits)
    officer_limits: OfficerLimits = field(default_factory=OfficerLimits)
    share_policy: SharePolicy = field(default_factory=SharePolicy)
    # How close a level-1 registrant's portrait must be to the enrolled one.
    portrait_policy: PortraitPolicy = field(default_factory=PortraitPolicy)
    parties: PartyCache = field(default_factory=PartyCache)
    # Password checks of one (subject, source) run one at a time in a process,
    # so a retried or duplicated call sees the first one's outcome.
    password_checks: KeyedLocks = field(default_factory=KeyedLocks)
    # How many password checks this process takes on at once (admission.py).
    password_admission: Admission = field(
        default_factory=lambda: Admission(Limits().max_password_checks)
    )
    # Each party's tokens leased by this process, and parties it knows to be
    # over their rate limit, until when.
    party_gate: PartyGate = field(default_factory=PartyGate)
    # Wakes Verify calls waiting on an approval request when this process
    # decides it (other processes' decisions are found by polling).
    approval_wakeups: Wakeups = field(default_factory=Wakeups)
    # How many of those waits each party holds in this process (approval_waits.py).
    approval_waits: ApprovalWaits = field(
        default_factory=lambda: ApprovalWaits(Limits().max_concurrent_rpcs)
    )
    # Level 2 and biometric Verify: the lowest cosine similarity that matches.
    biometric_thresholds: MatchThresholds = field(default_factory=MatchThresholds)
