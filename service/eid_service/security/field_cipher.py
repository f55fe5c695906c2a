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
from collections.abc import Callable

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
    """Encrypts with the ring's active key; decrypts with whichever key a blob names.

    `install` swaps in another ring's encryption keys (a server picking up a
    rotation, security/key_watch.py); `on_unknown_key`, if set, is called once
    when a blob names a key this cipher does not hold (it may install a newer
    ring) before the blob is refused.
    """

    __slots__ = ("_keys", "on_unknown_key")

    def __init__(self, ring: KeyRing) -> None:
        self._keys: tuple[str, dict[str, AESGCM]] = ("", {})
        self.on_unknown_key: Callable[[], object] | None = None
        self.install(ring)

    def __repr__(self) -> str:
        return f"FieldCipher(active_key_id={self._keys[0]!r})"

    def install(self, ring: KeyRing) -> None:
        """Encrypt with `ring`'s active key from now on and decrypt with its keys only."""
        aeads = {key_id: AESGCM(key) for key_id, key in ring.encryption_keys.items()}
        # One assignment: a thread sealing meanwhile sees the old pair or the new one.
        self._keys = (ring.active_encryption_key_id, aeads)

    @property
    def active_key_id(self) -> str:
        """The key new blobs are sealed with (stored beside rows that track theirs)."""
        return self._keys[0]

    @property
    def key_ids(self) -> frozenset[str]:
        """Every key this cipher decrypts with."""
        return frozenset(self._keys[1])

    def encrypt(self, plaintext: str, *, context: str) -> bytes:
        """Encrypt `plaintext`, bound to `context` (which must be given again to decrypt)."""
        return self.encrypt_bytes(plaintext.encode("utf-8"), context=context)

    def encrypt_bytes(self, plaintext: bytes, *, context: str) -> bytes:
        """`encrypt` for raw bytes (biometric templates): the same blob layout."""
        _check_context(context)
        active, aeads = self._keys
        key_id = active.encode("ascii")
        header = bytes([_VERSION, len(key_id)]) + key_id
        # Random 96-bit nonces are safe up to about 2**32 blobs per key
        # (NIST SP 800-38D); rotating keys keeps each key well below that.
        nonce = os.urandom(_NONCE_BYTES)
        sealed = aeads[active].encrypt(nonce, plaintext, header + context.encode("utf-8"))
        return header + nonce + sealed

    def sealer(self) -> BulkSealer:
        """`encrypt_bytes` for many blobs on one thread (bulk loads): the same
        blobs, with less work per call. Seals with the key active now."""
        active, aeads = self._keys
        key_id = active.encode("ascii")
        return _bulk_sealer(bytes([_VERSION, len(key_id)]) + key_id, aeads[active])

    def decrypt(self, blob: bytes, *, context: str) -> str:
        """The plaintext of `blob`; DecryptionError unless it is intact and bound to `context`."""
        try:
            return self.decrypt_bytes(blob, context=context).decode("utf-8")
        except UnicodeDecodeError:
            raise DecryptionError from None

    def decrypt_bytes(self, blob: bytes, *, context: str) -> bytes:
        """`decrypt` for what `encrypt_bytes` sealed."""
        _check_context(context)
        header, key_id, nonce, sealed = _split(blob)
        aead = self._keys[1].get(key_id)
        if aead is None and self.on_unknown_key is not None:
            self.on_unknown_key()
            aead = self._keys[1].get(key_id)
        if aead is None:
            raise DecryptionError
        try:
            return aead.decrypt(nonce, sealed, header + context.encode("utf-8"))
        except InvalidTag:
            raise DecryptionError from None

    def reencrypt(self, blob: bytes, *, context: str) -> bytes:
        """`blob`'s plaintext sealed again, under the active key and the same context."""
        return self.encrypt_bytes(self.decrypt_bytes(blob, context=context), context=context)

    def needs_reencrypt(self, blob: bytes) -> bool:
        """True if `blob` was encrypted under a key other than the active one."""
        return _split(blob)[1] != self._keys[0]


# Nonces a bulk sealer draws from the OS at once: a few at first, more as it
# seals more (so sealing one person does not draw thousands).
_FIRST_NONCES = 16
_MAX_NONCES = 4096

BulkSealer = Callable[[bytes, bytes], bytes]


def _bulk_sealer(header: bytes, aead: AESGCM) -> BulkSealer:
    """Seals like `FieldCipher.encrypt_bytes`, the context given as bytes, the
    random nonces drawn from the OS a few thousand at a time (one thread)."""
    encrypt = aead.encrypt
    pool = b""
    at = 0
    draw = _FIRST_NONCES

    def seal(plaintext: bytes, context: bytes) -> bytes:
        nonlocal pool, at, draw
        if not context:
            raise ValueError("an encryption context is required")
        if at >= len(pool):
            pool, at = os.urandom(draw * _NONCE_BYTES), 0
            draw = min(4 * draw, _MAX_NONCES)
        nonce = pool[at : at + _NONCE_BYTES]
        at += _NONCE_BYTES
        return header + nonce + encrypt(nonce, plaintext, header + context)

    return seal


def blob_key_id(blob: bytes) -> str:
    """The id of the key a blob was sealed with; DecryptionError if it is not a blob."""
    return _split(blob)[1]


def blob_prefix(key_id: str) -> bytes:
    """The first bytes of every blob sealed with `key_id` (its header)."""
    raw = key_id.encode("ascii")
    return bytes([_VERSION, len(raw)]) + raw
