"""A citizen's grant of chosen attributes to whoever presents its QR payload."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from eid_service.domain.errors import (
    DomainError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
)
from eid_service.domain.share import Attribute, ShareMode


class ShareState(enum.Enum):
    ACTIVE = "active"
    REDEEMED = "redeemed"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class ShareGrant:
    id: str
    account_id: str
    attributes: frozenset[Attribute]
    audience_party_id: str | None
    created_at: datetime
    expires_at: datetime
    # When it was first redeemed online.
    redeemed_at: datetime | None = None
    # Set by RevokeShare, or for every share when the citizen locks the account.
    revoked_at: datetime | None = None
    mode: ShareMode = ShareMode.ONLINE
    # Redeemable until expiry or revocation, not only once.
    multi_use: bool = False
    redeem_count: int = 0
    last_redeemed_at: datetime | None = None
    # The guardian's account when a guardian made it for a dependant
    # (`account_id` is the child's).
    issued_by: str | None = None

    def state(self, now: datetime) -> ShareState:
        if self.revoked_at is not None:
            return ShareState.REVOKED
        if self.redeemed_at is not None and not self.multi_use:
            return ShareState.REDEEMED
        if now >= self.expires_at:
            return ShareState.EXPIRED
        return ShareState.ACTIVE

    def check_redeemable_by(self, party_id: str, now: datetime, *, account_locked: bool) -> None:
        """Why this party cannot redeem the grant now, as a domain error."""
        if self.audience_party_id is not None and self.audience_party_id != party_id:
            raise PermissionDenied(
                reason="SHARE_AUDIENCE_MISMATCH",
                message="the share is bound to another relying party",
            )
        state = self.state(now)
        if state is ShareState.REVOKED:
            if account_locked:
                raise PreconditionFailed(
                    reason="ACCOUNT_LOCKED",
                    message="the citizen locked the account, which withdrew this share",
                )
            raise PreconditionFailed(
                reason="SHARE_REVOKED", message="the citizen withdrew this share"
            )
        if state is ShareState.REDEEMED:
            raise replayed_share()
        if state is ShareState.EXPIRED:
            raise expired_share()


def guardian_share_ended() -> PreconditionFailed:
    """A guardian's share of a child who has taken the account over."""
    return PreconditionFailed(
        reason="SHARE_REVOKED",
        message="the child took the account over, which withdrew the guardian's shares",
    )


def guardians_share_withdrawn() -> PreconditionFailed:
    """A guardian's share after the guardian's own account was locked or
    deactivated, which withdrew every share the guardian made."""
    return PreconditionFailed(
        reason="SHARE_REVOKED",
        message="the account of the guardian who made this share was locked or closed",
    )


def unknown_share() -> NotFound:
    """A genuine payload whose grant does not exist (purged, or another deployment's)."""
    return NotFound(reason="SHARE_NOT_FOUND", message="no share matches this payload")


def expired_share() -> PreconditionFailed:
    return PreconditionFailed(reason="SHARE_EXPIRED", message="the share has expired")


def replayed_share() -> PreconditionFailed:
    return PreconditionFailed(
        reason="SHARE_ALREADY_REDEEMED", message="the share has already been redeemed"
    )


_PAYLOAD_FIELD = "qr_share.token"
# What was wrong with the scanned payload itself: the caller sent a bad value.
_INVALID_PAYLOAD = {
    "SHARE_PAYLOAD_TOO_LARGE": "the payload is longer than 4096 characters",
    "SHARE_PAYLOAD_PREFIX_UNKNOWN": "the payload is not an eid share (unknown prefix)",
    "SHARE_PAYLOAD_VERSION_UNSUPPORTED": "the payload's format version is not supported",
    "SHARE_PAYLOAD_MALFORMED": "the payload is damaged or incomplete",
    "SHARE_KEY_UNKNOWN": "the payload names a signing key this service does not have",
    "SHARE_SIGNATURE_INVALID": "the payload's signature does not verify",
    "SHARE_ISSUER_MISMATCH": "the payload was issued by another issuer",
    "SHARE_ONLINE_ONLY": "an online share can only be redeemed through the service",
}
# Genuine in form, but not acceptable now.
_REFUSED_PAYLOAD = {
    "SHARE_KEY_REVOKED": "the key that signed the payload was revoked",
    "SHARE_EXPIRED": "the share has expired",
    "SHARE_NOT_YET_VALID": "the share is not valid yet (check the clock)",
}


def payload_refusal(reason: str) -> DomainError:
    """The domain error for a payload check's reason (see eid_client.offline)."""
    if reason in _INVALID_PAYLOAD:
        return InvalidInput.of(_PAYLOAD_FIELD, reason, _INVALID_PAYLOAD[reason])
    if reason in _REFUSED_PAYLOAD:
        return PreconditionFailed(reason=reason, message=_REFUSED_PAYLOAD[reason])
    if reason == "SHARE_AUDIENCE_MISMATCH":
        return PermissionDenied(
            reason=reason, message="the share is bound to another relying party"
        )
    raise ValueError(f"not a payload refusal reason: {reason}")
