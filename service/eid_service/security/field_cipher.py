"""Authenticated encryption of personal data at rest (AES-256-GCM).

Blob layout (self-describing, so keys can rotate without a schema change):

    version (1 byte, = 1) | key-id length (1 byte) | key id (ASCII)
    | nonce (12 bytes, random) | ciphertext + 16-byte GCM tag

The associated data is the header (version, key id) followed by the caller's
`context`, e.g. "account:42:full_name". A blob copied to another row or
column, or relabelled with another key id, fails authentication instead of
decrypting to somebody else's data.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from eid_service.security.keys import KeyRing

_VERSION = 1
_NONCE_BYTES = 12
_TAG_BYTES = 16


class DecryptionError(Exception):
    """A blob could not be decrypted: tampered, wrong context, unknown key or not a blob."""

    def __init__(self) -> None:
        # Deliberately fixed: which check failed is no business of a log reader.
        super().__init__("the encrypted field could not be decrypted")


def _split(blob: bytes) -> tuple[bytes, str, bytes, bytes]:
    """(header, key id, nonce, ciphertext+tag) of a blob; DecryptionError if malformed."""
    if len(blob) < 2 or blob[0] != _VERSION:
        raise DecryptionError
    header_len = 2 + blob[1]
    if len(blob) < header_len + _NONCE_BYTES + _TAG_BYTES:
        raise DecryptionError
    header = bytes(blob[:header_len])
    try:
        key_id = header[2:].decode("ascii")
    except UnicodeDecodeError:
        raise DecryptionError from None
    nonce = bytes(blob[header_len : header_len + _NONCE_BYTES])
    return header, key_id, nonce, bytes(blob[header_len + _NONCE_BYTES :])


def _check_context(context: str) -> None:
    # An empty context would let a blob be moved anywhere; that is a caller bug.
    if not context:
        raise ValueError("an encryption context is required")


class FieldCipher:
    """Encrypts with the ring's active key; decrypts with whichever key a blob names."""

    __slots__ = ("_active_key_id", "_aeads")

    def __init__(self, ring: KeyRing) -> None:
        self._aeads = {key_id: AESGCM(key) for key_id, key in ring.encryption_keys.items()}
        self._active_key_id = ring.active_encryption_key_id

    def __repr__(self) -> str:
        return f"FieldCipher(active_key_id={self._active_key_id!r})"

    @property
    def active_key_id(self) -> str:
        """The key new blobs are sealed with (stored beside rows that track theirs)."""
        return self._active_key_id

    def encrypt(self, plaintext: str, *, context: str) -> bytes:
        """Encrypt `plaintext`, bound to `context` (which must be given again to decrypt)."""
        _check_context(context)
        key_id = self._active_key_id.encode("ascii")
        header = bytes([_VERSION, len(key_id)]) + key_id
        # Random 96-bit nonces are safe up to about 2**32 blobs per key
        # (NIST SP 800-38D); rotating keys keeps each key well below that.
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aeads[self._active_key_id].encrypt(
            nonce, plaintext.encode("utf-8"), header + context.encode("utf-8")
        )
        return header + nonce + sealed

    def decrypt(self, blob: bytes, *, context: str) -> str:
        """The plaintext of `blob`; DecryptionError unless it is intact and bound to `context`."""
        _check_context(context)
        header, key_id, nonce, sealed = _split(blob)
        aead = self._aeads.get(key_id)
        if aead is None:
            raise DecryptionError
        try:
            plaintext = aead.decrypt(nonce, sealed, header + context.encode("utf-8"))
            return plaintext.decode("utf-8")
        except (InvalidTag, UnicodeDecodeError):
            raise DecryptionError from None

    def needs_reencrypt(self, blob: bytes) -> bool:
        """True if `blob` was encrypted under a key other than the active one."""
        return _split(blob)[1] != self._active_key_id
