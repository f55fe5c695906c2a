"""What every use case may use besides the unit of work."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from eid_service.security.passwords import PasswordHasher
from eid_service.security.share_tokens import ShareTokenSigner
from eid_service.use_cases.keyed_locks import KeyedLocks

SESSION_TTL = timedelta(minutes=15)
# Wrong passwords per account before verification and sign-in pause.
MAX_FAILED_PASSWORDS = 5
FAILED_PASSWORD_WINDOW = timedelta(minutes=15)
# Failed verifications per relying party before it is paused for the window.
MAX_PARTY_FAILURES = 100
PARTY_FAILURE_WINDOW = timedelta(minutes=1)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class UseCaseContext:
    passwords: PasswordHasher
    share_tokens: ShareTokenSigner
    clock: Callable[[], datetime] = utc_now
    # Password checks of one account queue here within a process; across
    # processes they meet at the account row's lease (see credentials.py).
    password_checks: KeyedLocks = field(default_factory=KeyedLocks)
