"""The two tools every repository uses to keep personal data unreadable at rest."""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass, field

from eid_service.security.field_cipher import FieldCipher
from eid_service.security.keyed_hash import KeyedHasher

# What decoys are sealed for: no stored value is.
_DECOY_CONTEXT = "decoy"


@dataclass(frozen=True)
class DataProtection:
    cipher: FieldCipher
    hasher: KeyedHasher
    # Decoys sealed so far, by value and key: sealed again after a rotation
    # (a decoy under a key since removed would fail only for numbers
    # without an account, the very thing it hides).
    _decoys: dict[tuple[str, str], bytes] = field(default_factory=dict, compare=False, repr=False)

    def seal(self, value: str, context: str) -> bytes:
        return self.cipher.encrypt(value, context=context)

    def open(self, blob: bytes, context: str) -> str:
        return self.cipher.decrypt(blob, context=context)

    def seal_bytes(self, value: bytes, context: str) -> bytes:
        return self.seal(base64.b64encode(value).decode("ascii"), context)

    def open_bytes(self, blob: bytes, context: str) -> bytes:
        return base64.b64decode(self.open(blob, context))

    def seal_raw(self, value: bytes, context: str) -> bytes:
        """Bytes sealed as they are (no base64): biometric templates, in bulk."""
        return self.cipher.encrypt_bytes(value, context=context)

    def open_raw(self, blob: bytes, context: str) -> bytes:
        return self.cipher.decrypt_bytes(blob, context=context)

    def open_decoy(self, value: str) -> str:
        """Opens `value`, sealed: what opening a stored value of its size
        costs, for a lookup that found none, so the time taken does not tell
        a number without an account (or templates) from one with them."""
        key = (value, self.cipher.active_key_id)
        blob = self._decoys.get(key)
        if blob is None:
            blob = self._decoys[key] = self.seal(value, _DECOY_CONTEXT)
        return self.open(blob, _DECOY_CONTEXT)

    @staticmethod
    def hasher_equal(a: bytes, b: bytes) -> bool:
        return hmac.compare_digest(a, b)
