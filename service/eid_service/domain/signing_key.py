"""The keys that sign share payloads, and where each stands in its life.

One key is CURRENT and signs; `rotate` retires it, and what it signed keeps
verifying until it expires (a retired key is published until `not_after`);
`revoke` (compromise) makes everything it signed fail at once.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

# Key ids travel in every offline QR payload: short, yet random enough that
# two keys of one deployment never collide by chance (the table's key checks).
_KEY_ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
_KEY_ID_RANDOM_CHARS = 5


class KeyState(enum.Enum):
    CURRENT = "current"
    RETIRED = "retired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class SigningKeyRecord:
    """A signing key's public half and history (the private half stays in the store)."""

    key_id: str
    public_key: bytes
    created_at: datetime
    retired_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def state(self) -> KeyState:
        if self.revoked_at is not None:
            return KeyState.REVOKED
        return KeyState.CURRENT if self.retired_at is None else KeyState.RETIRED

    def not_after(self, longest_share: timedelta) -> datetime | None:
        """The last moment something this key signed can be valid; None while current."""
        if self.retired_at is None:
            return None
        return self.retired_at + longest_share

    def published(self, now: datetime, longest_share: timedelta) -> bool:
        """Listed by GetVerificationKeys while it can matter to a verifier: an
        unrevoked key always (the verification receipts it signed are evidence
        that must stay checkable; its `not_after` still bounds the shares it
        signed), a revoked one for as long as its shares could otherwise have
        been valid."""
        if self.revoked_at is None:
            return True
        end = self.not_after(longest_share)
        return now < (end or self.revoked_at + longest_share)


def new_signing_key_id() -> str:
    """E.g. "k7qmx2": "k" and 5 random characters."""
    return "k" + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(_KEY_ID_RANDOM_CHARS))
