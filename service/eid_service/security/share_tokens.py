"""Expiring online QR share tokens: an opaque, authenticated reference, no personal data.

Token format (compact, because it becomes a QR code):

    "eid2." + b64url(payload) + "." + b64url(tag)      (base64url, no padding)

`payload` is compact JSON with sorted keys,
`{"aud": <party id or null>, "exp": <unix s>, "iat": <unix s>, "kid": <key id>, "sid": <share id>}`,
and `tag` is the first 16 bytes of HMAC-SHA256 over the ASCII bytes of
`"eid2." + b64url(payload)`, keyed with a key derived (HKDF) from the private
signing key named by `kid`.

Why a MAC and not a signature: only this service issues and redeems online
tokens (a party redeems one through Verify), so nobody else has anything to
check it against; an Ed25519 verification cost each redemption about 80 µs
of the event loop, an HMAC about 1 µs. Deriving the MAC key from the signing
key keeps one lifecycle for both: rotation keeps a retired key's tokens valid
until they expire, revoking the key fails them, and a stranger who has only
the published public keys can forge neither.

"eid1." tokens (the same payload signed with Ed25519, issued before "eid2")
are still read until they expire.

A bad token is refused with the reason of the first check it fails (size,
prefix, version, structure, key, signature), the same reasons as offline
credentials (eid_client.offline): the format is public, so telling which
check failed gives a stranger nothing. Whether the share may be redeemed
(expiry, audience, single use, revocation) is the store's to say.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from eid_service.domain.share_grant import payload_refusal

_PREFIX = "eid2"
_LEGACY_PREFIX = "eid1"  # Ed25519-signed; read, no longer issued
_VERSIONED_PREFIX = re.compile(r"eid[0-9]+\.")
MAX_TOKEN_CHARS = 1024
# Longer payloads are refused before any decoding (offline ones included).
MAX_PAYLOAD_CHARS = 4096
MAX_SHARE_ID_CHARS = 128
_SIGNATURE_BYTES = 64
_TAG_BYTES = 16  # 128 bits: a forger's chance per guess is 2**-128
_MAC_KEY_INFO = b"eid/online-share-token/eid2/"
_PAYLOAD_KEYS = frozenset({"aud", "exp", "iat", "kid", "sid"})
_B64URL_RE = re.compile(r"[A-Za-z0-9_-]+")
# Unix seconds this service can represent as datetimes on every platform.
_MAX_TIMESTAMP = 253402300799  # 9999-12-31T23:59:59Z


class _InvalidTokenError(Exception):
    """Internal: the token is not valid, for `reason`."""

    def __init__(self, reason: str = "SHARE_PAYLOAD_MALFORMED") -> None:
        super().__init__(reason)
        self.reason = reason


def is_online_token(payload: str) -> bool:
    """Whether the payload claims to be an online token (of any version)."""
    return _VERSIONED_PREFIX.match(payload) is not None


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


def mac_key(private_key: Ed25519PrivateKey, key_id: str) -> bytes:
    """The online tokens' MAC key of signing key `key_id` (HKDF-SHA256 of its
    private half, bound to the key id and the token version)."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=_MAC_KEY_INFO + key_id.encode("utf-8"),
    ).derive(private_key.private_bytes_raw())


def _tag(key: bytes, signing_input: str) -> bytes:
    # Not hmac.digest, which releases the GIL (see KeyedHasher.digest).
    return hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()[:_TAG_BYTES]


class ShareTokenSigner:
    """Issues tokens with the current key; reads tokens of any key it was given
    except revoked ones."""

    __slots__ = ("_active_key_id", "_mac_keys", "_public_keys", "_revoked")

    def __init__(
        self,
        active_key_id: str,
        private_keys: Mapping[str, Ed25519PrivateKey],
        revoked: frozenset[str] = frozenset(),
    ) -> None:
        if active_key_id not in private_keys:
            raise ValueError("the active key must be one of the keys")
        self._active_key_id = active_key_id
        self._mac_keys = {kid: mac_key(key, kid) for kid, key in private_keys.items()}
        self._public_keys: dict[str, Ed25519PublicKey] = {
            kid: key.public_key() for kid, key in private_keys.items()
        }
        self._revoked = revoked

    def __repr__(self) -> str:
        return f"ShareTokenSigner(active_key_id={self._active_key_id!r})"

    @property
    def active_key_id(self) -> str:
        return self._active_key_id

    def issue(self, claims: ShareClaims) -> str:
        """The token for `claims` (ValueError if the claims cannot make a valid token)."""
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
        tag = _tag(self._mac_keys[self._active_key_id], signing_input)
        token = f"{signing_input}.{_b64url_encode(tag)}"
        if len(token) > MAX_TOKEN_CHARS:
            raise ValueError("the share token would be too long")
        return token

    def read(self, token: str) -> ShareClaims:
        """The claims of a genuine token, expired or not; raises the domain
        error of the first check it fails."""
        try:
            return self._check(token)
        except _InvalidTokenError as invalid:
            raise payload_refusal(invalid.reason) from None

    def claims_of_genuine(self, token: str) -> ShareClaims | None:
        """The claims of a token signed by a key it has, expired or not; else None."""
        try:
            return self._check(token)
        except _InvalidTokenError:
            return None

    def _check(self, token: object) -> ShareClaims:
        if not isinstance(token, str):
            raise _InvalidTokenError
        if len(token) > MAX_PAYLOAD_CHARS:
            raise _InvalidTokenError("SHARE_PAYLOAD_TOO_LARGE")
        if not is_online_token(token):
            raise _InvalidTokenError("SHARE_PAYLOAD_PREFIX_UNKNOWN")
        version = token[: token.index(".")]
        if version not in (_PREFIX, _LEGACY_PREFIX):
            raise _InvalidTokenError("SHARE_PAYLOAD_VERSION_UNSUPPORTED")
        if len(token) > MAX_TOKEN_CHARS or not token.isascii():
            raise _InvalidTokenError
        parts = token.split(".")
        if len(parts) != 3:
            raise _InvalidTokenError
        payload_raw = _b64url_decode(parts[1])
        signature = _b64url_decode(parts[2])
        legacy = version == _LEGACY_PREFIX
        if len(signature) != (_SIGNATURE_BYTES if legacy else _TAG_BYTES):
            raise _InvalidTokenError
        try:
            payload = json.loads(payload_raw)
        except (ValueError, RecursionError):
            raise _InvalidTokenError from None
        if not isinstance(payload, dict) or payload.keys() != _PAYLOAD_KEYS:
            raise _InvalidTokenError
        # The kid is unauthenticated until the signature checks out; it only picks the key.
        kid = payload["kid"]
        if not isinstance(kid, str) or kid not in self._mac_keys:
            raise _InvalidTokenError("SHARE_KEY_UNKNOWN")
        signing_input = f"{parts[0]}.{parts[1]}"
        if legacy:
            try:
                self._public_keys[kid].verify(signature, signing_input.encode("ascii"))
            except InvalidSignature:
                raise _InvalidTokenError("SHARE_SIGNATURE_INVALID") from None
        elif not hmac.compare_digest(signature, _tag(self._mac_keys[kid], signing_input)):
            raise _InvalidTokenError("SHARE_SIGNATURE_INVALID")
        if kid in self._revoked:
            raise _InvalidTokenError("SHARE_KEY_REVOKED")
        share_id, audience = payload["sid"], payload["aud"]
        if not isinstance(share_id, str) or not share_id:
            raise _InvalidTokenError
        if audience is not None and (not isinstance(audience, str) or not audience):
            raise _InvalidTokenError
        issued_at, expires_at = _timestamp(payload["iat"]), _timestamp(payload["exp"])
        if expires_at <= issued_at:
            raise _InvalidTokenError
        return ShareClaims(share_id, audience, issued_at, expires_at)
