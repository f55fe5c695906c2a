"""Approval on the citizen's device: a relying party asks, the signed-in
citizen approves or declines in the app, the party collects the outcome.

A request names its citizen by ID number, or by nobody until the citizen's
app claims it with the token from the party's QR code. Both sides show the
same short verification code, which the citizen confirms when approving: a
request the citizen did not start at the party they are looking at shows
another code. A few wrong codes void the request. Requests live 2 minutes."""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from eid_service.domain.errors import (
    InvalidInput,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    TooManyAttempts,
    Unavailable,
)
from eid_service.domain.rate_limits import Limit
from eid_service.domain.share import Attribute

APPROVAL_TTL = timedelta(minutes=2)
CODE_DIGITS = 4
# Wrong codes before the request is void: the first. An app may offer the
# citizen CODE_CHOICES codes to pick from; with as many tries as choices, a
# citizen tapping through a push-bomb without looking approved it every time
# (found by an attacker's pass). A slip costs the party a new request.
MAX_CODE_ATTEMPTS = 1
MAX_MESSAGE_LENGTH = 100
# How many codes the app may offer the citizen to pick from (the real one among them).
CODE_CHOICES = 3

# No party may flood a citizen's app: requests per (party, ID number) in a
# request's lifetime and in an hour, and per ID number over all parties in an
# hour. They count for any ID number alike, account or not. The ceiling over
# all parties is ten parties' hours: when one party could reach it alone (3
# every 2 minutes against 30 an hour), it kept the citizen's other parties
# out for as long as it liked (found by an attacker's pass).
PER_PARTY_CITIZEN = Limit("approval-party-citizen", 3, APPROVAL_TTL)
PER_PARTY_CITIZEN_HOUR = Limit("approval-party-citizen-hour", 10, timedelta(hours=1))
PER_CITIZEN = Limit("approval-citizen", 100, timedelta(hours=1))

APPROVAL_ID_PATTERN = re.compile(r"apr_[0-9a-f]{24}")
_TOKEN = re.compile(r"eidapr1\.[A-Za-z0-9_-]{32}")
_CODE = re.compile(rf"[0-9]{{{CODE_DIGITS}}}")


class ApprovalState(enum.Enum):
    """As stored; a PENDING request past its expiry is EXPIRED (see `status`)."""

    PENDING = "pending"
    APPROVED = "approved"
    DECLINED = "declined"
    VOIDED = "voided"  # too many wrong verification codes
    EXPIRED = "expired"  # never stored


@dataclass(frozen=True)
class ApprovalRequest:
    id: str
    party_id: str
    # What approving releases: asked for by the party, within its scopes.
    attributes: frozenset[Attribute]
    code: str = field(repr=False)
    created_at: datetime
    expires_at: datetime
    # The citizen it is shown to: set at start for an ACTIVE account's ID
    # number, by ClaimApproval for the QR variant, never otherwise.
    account_id: str | None = None
    # The blind index of the person (for the audit chain); None until claimed.
    subject: bytes | None = field(default=None, repr=False)
    message: str = field(default="", repr=False)
    state: ApprovalState = ApprovalState.PENDING
    code_attempts: int = 0
    decided_at: datetime | None = None
    # When the party's Verify took the outcome (once).
    collected_at: datetime | None = None
    # Started without an ID number: claimable with the QR token.
    by_qr: bool = False

    def status(self, now: datetime) -> ApprovalState:
        if self.state is ApprovalState.PENDING and now >= self.expires_at:
            return ApprovalState.EXPIRED
        return self.state


def new_approval_id() -> str:
    return "apr_" + secrets.token_hex(12)


def new_verification_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def new_approval_token() -> str:
    """What the party's QR code carries: 192 random bits, stored only as a digest."""
    return "eidapr1." + secrets.token_urlsafe(24)


def code_choices(code: str, seed: bytes) -> list[str]:
    """`CODE_CHOICES` distinct codes, `code` among them, drawn from `seed` (a
    keyed digest of the request id): the same list on every call, and no way
    to tell the real code by its place."""
    choices = {code}
    counter = 0
    while len(choices) < CODE_CHOICES:
        block = hashlib.sha256(seed + counter.to_bytes(4)).digest()
        choices.add(f"{int.from_bytes(block[:4]) % 10**CODE_DIGITS:0{CODE_DIGITS}d}")
        counter += 1
    return sorted(choices, key=lambda c: hashlib.sha256(seed + c.encode()).digest())


def parse_approval_id(raw: str, field_name: str) -> str:
    if not APPROVAL_ID_PATTERN.fullmatch(raw):
        raise InvalidInput.of(
            field_name, "APPROVAL_ID_INVALID", "use the approval_id StartApproval returned"
        )
    return raw


def parse_approval_token(raw: str, field_name: str = "token") -> str:
    text = raw.strip()
    if not _TOKEN.fullmatch(text):
        raise InvalidInput.of(
            field_name,
            "APPROVAL_TOKEN_MALFORMED",
            "scan the QR code of an approval request (it starts with eidapr1.)",
        )
    return text


def parse_verification_code(raw: str, field_name: str = "verification_code") -> str:
    text = raw.strip()
    if not _CODE.fullmatch(text):
        raise InvalidInput.of(
            field_name,
            "VERIFICATION_CODE_MALFORMED",
            f"type the {CODE_DIGITS}-digit code the relying party shows",
        )
    return text


def parse_message(raw: str, field_name: str = "message") -> str:
    text = raw.strip()
    if len(text) > MAX_MESSAGE_LENGTH or not text.isprintable():
        raise InvalidInput.of(
            field_name,
            "APPROVAL_MESSAGE_INVALID",
            f"a message is at most {MAX_MESSAGE_LENGTH} printable characters",
        )
    return text


# ---- refusals ---------------------------------------------------------------


def approval_not_found() -> NotFound:
    return NotFound(reason="APPROVAL_NOT_FOUND", message="no approval request of yours has this id")


def approval_expired() -> PreconditionFailed:
    return PreconditionFailed(
        reason="APPROVAL_EXPIRED",
        message="the approval request expired before it was decided; start a new one",
    )


def approval_declined() -> PermissionDenied:
    return PermissionDenied(
        reason="APPROVAL_DECLINED", message="the citizen declined the approval request"
    )


def approval_wrong_code() -> PermissionDenied:
    return PermissionDenied(
        reason="APPROVAL_WRONG_CODE",
        message="the citizen confirmed a wrong verification code too often: the request is"
        " void; start a new one and show its code clearly",
    )


def approval_pending(expires_at: datetime) -> Unavailable:
    return Unavailable(
        reason="APPROVAL_PENDING",
        message="the citizen has not decided yet; call Verify again to keep waiting",
        metadata={"retry_after_seconds": "1", "expire_time": expires_at.isoformat()},
    )


def approval_waits_exceeded(most: int) -> TooManyAttempts:
    return TooManyAttempts(
        reason="APPROVAL_WAITS_EXCEEDED",
        message=f"this relying party already waits on approvals in {most} calls at once here;"
        " collect with max_wait 0, or wait once one of those calls has ended",
        # As SERVER_BUSY: when one of the party's waits ends is not known here.
        metadata={"retry_after_seconds": "1", "max_waits": str(most)},
    )


def approval_used() -> PreconditionFailed:
    return PreconditionFailed(
        reason="APPROVAL_ALREADY_USED",
        message="this approval was already collected by an earlier Verify; start a new one"
        " (retry a lost answer with its request_id)",
    )


def already_decided(state: ApprovalState) -> PreconditionFailed:
    return PreconditionFailed(
        reason="APPROVAL_ALREADY_DECIDED",
        message=f"the approval request is {state.value} already",
        metadata={"state": state.value},
    )


def already_claimed() -> PreconditionFailed:
    return PreconditionFailed(
        reason="APPROVAL_ALREADY_CLAIMED",
        message="another device claimed this approval request first",
    )


def wrong_code(attempts_left: int) -> InvalidInput:
    if attempts_left > 0:  # only if MAX_CODE_ATTEMPTS forgives slips again
        text = f"that is not the code the relying party shows; {attempts_left} tries left"
    else:
        text = "that is not the code the relying party shows; the request is now void"
    error = InvalidInput.of("verification_code", "VERIFICATION_CODE_WRONG", text)
    error.metadata["attempts_left"] = str(attempts_left)
    return error


REFUSALS = {
    ApprovalState.DECLINED: approval_declined,
    ApprovalState.VOIDED: approval_wrong_code,
    ApprovalState.EXPIRED: approval_expired,
}
