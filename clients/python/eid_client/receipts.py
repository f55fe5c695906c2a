"""Verification receipts: what a relying party keeps as evidence of a Verify.

A receipt is a JWS in compact serialization (RFC 7515), `alg` "EdDSA" (RFC
8037), signed by the keys that sign QR shares and that GetVerificationKeys
publishes (also as a JWKS), so any JOSE library can check it. The protected
header is exactly {"alg":"EdDSA","kid":KEY_ID,"typ":"eid-receipt+jwt"}; the
payload is JSON (compact, sorted keys): iss, sub (the citizen's pairwise
subject for the party), aud (the party id), iat, jti (the verification id),
mode, level, attrs (the released attribute names, sorted), result
("verified" or "not_verified") and, only when not verified, an optional reason.

Receipts do not expire: they are evidence. The verifier reads only what this
module issues (canonical unpadded base64url, no duplicate JSON keys, exactly
these header members and claims); the kid only selects the key, and the claims
are not looked at before the signature checks out. Checks run in this order,
the first failure's reason is raised: size, structure, key, signature, claims,
the key's retirement, issuer, audience."""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from eid_client.offline import KeySet

__all__ = [
    "MAX_RECEIPT_CHARS",
    "MODES",
    "REASONS",
    "RECEIPT_TYPE",
    "ReceiptClaims",
    "ReceiptVerificationError",
    "sign_receipt",
    "verify_receipt",
]

MAX_RECEIPT_CHARS = 4096
RECEIPT_TYPE = "eid-receipt+jwt"
MODES = frozenset({"password", "one_time_code", "approval", "demographic", "qr_share", "biometric"})
_MESSAGES = {
    "RECEIPT_TOO_LARGE": "the receipt is too large",
    "RECEIPT_MALFORMED": "the receipt is damaged, incomplete or not an eid receipt",
    "RECEIPT_KEY_UNKNOWN": "the receipt names an unknown signing key",
    "RECEIPT_KEY_REVOKED": "the key that signed the receipt was revoked",
    "RECEIPT_SIGNATURE_INVALID": "the receipt's signature does not verify",
    "RECEIPT_ISSUED_AFTER_KEY_RETIRED": "the receipt is dated after its key was retired",
    "RECEIPT_ISSUER_MISMATCH": "the receipt was issued by another issuer",
    "RECEIPT_AUDIENCE_MISMATCH": "the receipt was issued to another party",
}
REASONS = frozenset(_MESSAGES)

_MAX_HEADER_CHARS = 256  # base64url; ours is about 80 plus the key id
_MAX_KEY_ID_BYTES = 64
_MAX_TIMESTAMP = 253402300799  # 9999-12-31T23:59:59Z
_SIGNATURE_CHARS = 86  # 64 bytes
_CLAIMS = frozenset({"iss", "sub", "aud", "iat", "jti", "mode", "level", "attrs", "result"})


class ReceiptVerificationError(Exception):
    """A receipt refused; `reason` is one of REASONS, the message holds no personal data."""

    def __init__(self, reason: str) -> None:
        super().__init__(_MESSAGES[reason])
        self.reason = reason
        self.message = _MESSAGES[reason]


def _refuse(reason: str = "RECEIPT_MALFORMED") -> ReceiptVerificationError:
    return ReceiptVerificationError(reason)


@dataclass(frozen=True, slots=True)
class ReceiptClaims:
    """What a receipt says. `issued_at` is aware (UTC once read back), whole seconds."""

    issuer: str
    subject: str  # the citizen's pairwise subject for `audience`
    audience: str  # the relying party's id
    issued_at: datetime
    verification_id: str
    mode: str  # one of MODES
    level: str  # the account level, e.g. "LEVEL_1"; "" when not verified
    attributes: tuple[str, ...]  # the released attribute names, sorted
    verified: bool
    reason: str = ""  # why not verified (only then)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(segment: str) -> bytes:
    """Unpadded base64url in its one canonical form (the unused low bits of the
    last character zero), so that no two texts decode to the same bytes; the
    round trip also refuses what decoding would skip or translate (=, +, /)."""
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except ValueError:  # binascii.Error, non-ASCII text
        raise _refuse() from None
    if _b64(raw) != segment:
        raise _refuse()
    return raw


def _json(canonical: Mapping[str, object]) -> bytes:
    return json.dumps(canonical, separators=(",", ":"), sort_keys=True).encode()


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise ValueError("duplicate key")
    return document


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _object(raw: bytes) -> dict[str, Any]:
    try:
        document = json.loads(
            raw.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constant
        )
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError too
        raise _refuse() from None
    if not isinstance(document, dict):
        raise _refuse()
    return document


def _valid(claims: ReceiptClaims) -> bool:
    """Whether the claims are what a receipt may say: the signer's and the verifier's rules."""
    named = (claims.issuer, claims.subject, claims.audience, claims.verification_id)
    attrs, reason = claims.attributes, claims.reason
    return (
        all(isinstance(text, str) for text in (*named, claims.mode, claims.level, reason))
        and all(named)
        and claims.mode in MODES
        and bool(claims.level) == claims.verified  # a level only when verified
        and not (claims.verified and reason)  # a reason only when not
        and all(isinstance(name, str) and name for name in attrs)
        and list(attrs) == sorted(set(attrs))
    )


@functools.lru_cache(maxsize=16)
def _header_segment(key_id: str) -> str:
    """The encoded header of a receipt signed by `key_id` (the same for all of its receipts)."""
    return _b64(_json({"alg": "EdDSA", "kid": key_id, "typ": RECEIPT_TYPE}))


def sign_receipt(claims: ReceiptClaims, key_id: str, private_key: Ed25519PrivateKey) -> str:
    """The compact JWS of `claims` signed with `private_key`; ValueError on bad
    claims (naive or fractional time, empty fields, unknown mode, attributes not
    sorted and unique, a level without verification or a reason with it)."""
    at = claims.issued_at
    if at.utcoffset() is None or at.microsecond or not 0 <= at.timestamp() <= _MAX_TIMESTAMP:
        raise ValueError("issued_at must be an aware datetime in whole seconds")
    if not 0 < len(key_id.encode()) <= _MAX_KEY_ID_BYTES:
        raise ValueError(f"the key id must be 1 to {_MAX_KEY_ID_BYTES} bytes")
    if not _valid(claims):
        raise ValueError("bad receipt claims")
    payload: dict[str, object] = {
        "iss": claims.issuer,
        "sub": claims.subject,
        "aud": claims.audience,
        "iat": int(at.timestamp()),
        "jti": claims.verification_id,
        "mode": claims.mode,
        "level": claims.level,
        "attrs": list(claims.attributes),
        "result": "verified" if claims.verified else "not_verified",
    }
    if claims.reason:
        payload["reason"] = claims.reason
    signing_input = f"{_header_segment(key_id)}.{_b64(_json(payload))}"
    token = f"{signing_input}.{_b64(private_key.sign(signing_input.encode('ascii')))}"
    if len(token) > MAX_RECEIPT_CHARS:
        raise ValueError(f"the receipt would exceed {MAX_RECEIPT_CHARS} characters")
    return token


def _key_id(header_segment: str) -> str:
    if len(header_segment) > _MAX_HEADER_CHARS:
        raise _refuse()
    header = _object(_unb64(header_segment))
    kid = header.get("kid")
    if (
        header.keys() != {"alg", "kid", "typ"}
        or header["alg"] != "EdDSA"  # never "none", never another algorithm
        or header["typ"] != RECEIPT_TYPE
        or not isinstance(kid, str)
        or not 0 < len(kid.encode("utf-8", "replace")) <= _MAX_KEY_ID_BYTES
    ):
        raise _refuse()
    return kid


def _claims(payload: dict[str, Any]) -> ReceiptClaims:
    """The claims of a genuine payload; RECEIPT_MALFORMED if they are not ours."""
    iat, attrs, result = payload.get("iat"), payload.get("attrs"), payload.get("result")
    if (
        not _CLAIMS <= payload.keys() <= _CLAIMS | {"reason"}
        or type(iat) is not int
        or not 0 <= iat <= _MAX_TIMESTAMP
        or not isinstance(attrs, list)
        or result not in ("verified", "not_verified")
        or payload.get("reason") == ""  # present only to say why
    ):
        raise _refuse()
    claims = ReceiptClaims(
        issuer=payload["iss"],
        subject=payload["sub"],
        audience=payload["aud"],
        issued_at=datetime.fromtimestamp(iat, UTC),
        verification_id=payload["jti"],
        mode=payload["mode"],
        level=payload["level"],
        attributes=tuple(attrs),
        verified=result == "verified",
        reason=payload.get("reason", ""),
    )
    if not _valid(claims):
        raise _refuse()
    return claims


def verify_receipt(
    token: str, keys: KeySet, *, issuer: str | None = None, audience: str | None = None
) -> ReceiptClaims:
    """The claims of `token` if it is a genuine receipt signed by a key of `keys`
    that is not revoked and was not retired before the receipt's date, issued
    by `issuer` to `audience` (each checked when given); otherwise
    ReceiptVerificationError with the reason of the first check that failed."""
    if len(token) > MAX_RECEIPT_CHARS:
        raise _refuse("RECEIPT_TOO_LARGE")
    parts = token.split(".")
    if len(parts) != 3 or len(parts[2]) != _SIGNATURE_CHARS or not parts[1]:
        raise _refuse()
    header_segment, payload_segment, signature_segment = parts
    kid = _key_id(header_segment)
    payload_bytes = _unb64(payload_segment)
    signature = _unb64(signature_segment)
    key = keys.get(kid)
    if key is None:
        raise _refuse("RECEIPT_KEY_UNKNOWN")
    if key.revoked:
        raise _refuse("RECEIPT_KEY_REVOKED")
    try:
        verifier = Ed25519PublicKey.from_public_bytes(key.public_key)
        verifier.verify(signature, f"{header_segment}.{payload_segment}".encode("ascii"))
    except InvalidSignature:
        raise _refuse("RECEIPT_SIGNATURE_INVALID") from None
    # Genuine from here on: what follows catches issuer bugs and misuse, not forgery.
    claims = _claims(_object(payload_bytes))
    if key.not_after is not None and claims.issued_at > key.not_after:
        raise _refuse("RECEIPT_ISSUED_AFTER_KEY_RETIRED")
    if issuer is not None and claims.issuer != issuer:
        raise _refuse("RECEIPT_ISSUER_MISMATCH")
    if audience is not None and claims.audience != audience:
        raise _refuse("RECEIPT_AUDIENCE_MISMATCH")
    return claims
