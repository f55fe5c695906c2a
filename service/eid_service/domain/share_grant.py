"""A citizen's grant of chosen attributes to whoever presents its token."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from eid_service.domain.errors import InvalidInput, PermissionDenied, PreconditionFailed
from eid_service.domain.share import Attribute


@dataclass(frozen=True)
class ShareGrant:
    id: str
    account_id: str
    attributes: frozenset[Attribute]
    audience_party_id: str | None
    created_at: datetime
    expires_at: datetime
    redeemed_at: datetime | None = None
    # Set when the citizen locked the account: no share of it is honoured.
    revoked_at: datetime | None = None

    def check_redeemable_by(self, party_id: str, now: datetime) -> None:
        """Why this party cannot redeem the grant now, as a domain error."""
        if self.audience_party_id is not None and self.audience_party_id != party_id:
            raise PermissionDenied(
                reason="SHARE_AUDIENCE_MISMATCH",
                message="the share is bound to another relying party",
            )
        if self.redeemed_at is not None:
            raise PreconditionFailed(
                reason="SHARE_ALREADY_REDEEMED", message="the share has already been redeemed"
            )
        if self.revoked_at is not None:
            # Shares are withdrawn only by locking the account.
            raise PreconditionFailed(
                reason="ACCOUNT_LOCKED",
                message="the citizen locked the account, which withdrew this share",
            )
        if now >= self.expires_at:
            raise expired_share()


def unknown_share() -> InvalidInput:
    """A signed token whose grant does not exist (e.g. another deployment's)."""
    return InvalidInput.of("qr_share.token", "SHARE_TOKEN_INVALID", "the share token is not valid")


def expired_share() -> PreconditionFailed:
    return PreconditionFailed(reason="SHARE_EXPIRED", message="the share has expired")
