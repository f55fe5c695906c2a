"""Signed, expiring QR share tokens (Ed25519).

Token format (compact, because it becomes a QR code):

    "eid1." + b64url(payload) + "." + b64url(signature)      (base64url, no padding)

`payload` is compact JSON with sorted keys,
`{"aud": <party id or null>, "exp": <unix s>, "iat": <unix s>, "kid": <key id>, "sid": <share id>}`,
and the Ed25519 signature covers the ASCII bytes of `"eid1." + b64url(payload)`.
A relying party can verify a token offline with the published public keys.

Verification fails with exactly two reasons: SHARE_TOKEN_INVALID (anything
wrong with the token itself) or SHARE_EXPIRED (genuine but too old). Which
check rejected an invalid token is deliberately not revealed.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from eid_service.domain.errors import InvalidInput
from eid_service.domain.share_grant import expired_share
from eid_service.security.keys import KeyRing

_PREFIX = "eid1"
MAX_TOKEN_CHARS = 1024
MAX_SHARE_ID_CHARS = 128
_SIGNATURE_BYTES = 64
_PAYLOAD_KEYS = frozenset({"aud", "exp", "iat", "kid", "sid"})
_B64URL_RE = re.compile(r"[A-Za-z0-9_-]+")
# Unix seconds this service can represent as datetimes on every platform.
_MAX_TIMESTAMP = 253402300799  # 9999-12-31T23:59:59Z


class _InvalidTokenError(Exception):
    """Internal: the token is not valid (the reason stays internal)."""


def _invalid_token() -> InvalidInput:
    return InvalidInput.of("qr_share.token", "SHARE_TOKEN_INVALID", "the share token is not valid")


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")


@dataclass(frozen=True)
class ShareClaims:
    """What a share token says. Datetimes are timezone-aware; the token keeps whole seconds."""

    share_id: str
    audience: str | None
    issued_at: datetime
    expires_at: datetime

    def __post_init__(self) -> None:
        _require_aware("issued_at", self.issued_at)
        _require_aware("expires_at", self.expires_at)


def _b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    if _B64URL_RE.fullmatch(text) is None:
        raise _InvalidTokenError
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise _InvalidTokenError from None
    # Only the canonical spelling is accepted, so one share has one token text.
    if _b64url_encode(raw) != text:
        raise _InvalidTokenError
    return raw


def _timestamp(value: Any) -> datetime:
    # bool is an int subclass; JSON floats, strings and huge numbers are rejected too.
    if type(value) is not int or not 0 <= value <= _MAX_TIMESTAMP:
        raise _InvalidTokenError
    return datetime.fromtimestamp(value, UTC)


class ShareTokenSigner:
    """Issues tokens with the ring's active signing key; verifies with any key in the ring."""

    __slots__ = ("_active_key_id", "_private_keys", "_public_keys")

    def __init__(self, ring: KeyRing) -> None:
        self._private_keys = dict(ring.signing_keys)
        self._active_key_id = ring.active_signing_key_id
        self._public_keys: dict[str, Ed25519PublicKey] = {
            key_id: key.public_key() for key_id, key in ring.signing_keys.items()
        }

    def __repr__(self) -> str:
        return f"ShareTokenSigner(active_key_id={self._active_key_id!r})"

    def issue(self, claims: ShareClaims) -> str:
        """The signed token for `claims` (ValueError if the claims cannot make a valid token)."""
        if not claims.share_id or len(claims.share_id) > MAX_SHARE_ID_CHARS:
            raise ValueError(f"share_id must have 1 to {MAX_SHARE_ID_CHARS} characters")
        if claims.audience is not None and not claims.audience:
            raise ValueError("audience must be None or a non-empty string")
        iat = int(claims.issued_at.timestamp())
        exp = int(claims.expires_at.timestamp())
        if not 0 <= iat < exp <= _MAX_TIMESTAMP:
            raise ValueError("expires_at must be after issued_at (whole seconds)")
        payload = {
            "aud": claims.audience,
            "exp": exp,
            "iat": iat,
            "kid": self._active_key_id,
            "sid": claims.share_id,
        }
        encoded = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("ascii")
        signing_input = f"{_PREFIX}.{_b64url_encode(encoded)}"
        signature = self._private_keys[self._active_key_id].sign(signing_input.encode("ascii"))
        token = f"{signing_input}.{_b64url_encode(signature)}"
        if len(token) > MAX_TOKEN_CHARS:
            raise ValueError("the share token would be too long")
        return token

    def verify(self, token: str, *, now: datetime) -> ShareClaims:
        """The claims of a genuine, unexpired token.

        Raises InvalidInput (SHARE_TOKEN_INVALID) for anything malformed or not
        signed by a key of this ring, PreconditionFailed (SHARE_EXPIRED) for a
        genuine token at or after its expiry.
        """
        _require_aware("now", now)
        try:
            claims = self._check(token)
        except _InvalidTokenError:
            raise _invalid_token() from None
        if now >= claims.expires_at:
            raise expired_share()
        return claims

    def claims_of_genuine(self, token: str) -> ShareClaims | None:
        """The claims of a token signed by this ring, expired or not; else None."""
        try:
            return self._check(token)
        except _InvalidTokenError:
            return None

    def _check(self, token: object) -> ShareClaims:
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or not token.isascii():
            raise _InvalidTokenError
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != _PREFIX:
            raise _InvalidTokenError
        payload_raw = _b64url_decode(parts[1])
        signature = _b64url_decode(parts[2])
        if len(signature) != _SIGNATURE_BYTES:
            raise _InvalidTokenError
        try:
            payload = json.loads(payload_raw)
        except (ValueError, RecursionError):
            raise _InvalidTokenError from None
        if not isinstance(payload, dict) or payload.keys() != _PAYLOAD_KEYS:
            raise _InvalidTokenError
        # The kid is unauthenticated until the signature checks out; it only picks the key.
        kid = payload["kid"]
        public_key = self._public_keys.get(kid) if isinstance(kid, str) else None
        if public_key is None:
            raise _InvalidTokenError
        try:
            public_key.verify(signature, f"{parts[0]}.{parts[1]}".encode("ascii"))
        except InvalidSignature:
            raise _InvalidTokenError from None
        share_id, audience = payload["sid"], payload["aud"]
        if not isinstance(share_id, str) or not share_id:
            raise _InvalidTokenError
        if audience is not None and (not isinstance(audience, str) or not audience):
            raise _InvalidTokenError
        issued_at, expires_at = _timestamp(payload["iat"]), _timestamp(payload["exp"])
        if expires_at <= issued_at:
            raise _InvalidTokenError
        return ShareClaims(share_id, audience, issued_at, expires_at)

    def public_keys(self) -> dict[str, bytes]:
        """Key id -> raw 32-byte Ed25519 public key, for publishing verification keys."""
        return {
            key_id: key.public_bytes(Encoding.Raw, PublicFormat.Raw)
            for key_id, key in self._public_keys.items()
        }
