"""Key material for the security layer, rotatable by key id.

One `KeyRing` holds every key the service needs:

- `hmac_key`: the secret behind blind indexes and keyed hashes. It is not
  rotated by `rotate()` because every stored index and hash depends on it.
- `encryption_keys`: AES-256 keys by id; new data uses the active one, old data
  names its key id so it still decrypts after a rotation.
- `signing_keys`: Ed25519 keys by id; new share tokens are signed with the
  active one, tokens signed with older keys still verify.

The ring is persisted as JSON (`"version": 1`, raw key bytes in base64) in a
file only the service user may read.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
import secrets
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

HMAC_KEY_BYTES = 32
ENCRYPTION_KEY_BYTES = 32
_ED25519_KEY_BYTES = 32
_FORMAT_VERSION = 1

# Key ids travel inside ciphertexts (length-prefixed by one byte) and share
# tokens, so they are short, ASCII and free of separators.
_KEY_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def is_valid_key_id(key_id: object) -> bool:
    """True if `key_id` is usable as a key id (1-64 ASCII letters, digits, '-', '_')."""
    return isinstance(key_id, str) and _KEY_ID_RE.fullmatch(key_id) is not None


@dataclass(frozen=True, eq=False)
class KeyRing:
    """Every key of the service, by key id. Secret fields are kept out of repr."""

    hmac_key: bytes = field(repr=False)
    encryption_keys: Mapping[str, bytes] = field(repr=False)
    active_encryption_key_id: str
    signing_keys: Mapping[str, Ed25519PrivateKey] = field(repr=False)
    active_signing_key_id: str

    def __post_init__(self) -> None:
        if not isinstance(self.hmac_key, bytes) or len(self.hmac_key) != HMAC_KEY_BYTES:
            raise ValueError(f"hmac_key must be {HMAC_KEY_BYTES} bytes")
        _check_keys(
            "encryption",
            self.encryption_keys,
            self.active_encryption_key_id,
            lambda key: isinstance(key, bytes) and len(key) == ENCRYPTION_KEY_BYTES,
        )
        _check_keys(
            "signing",
            self.signing_keys,
            self.active_signing_key_id,
            lambda key: isinstance(key, Ed25519PrivateKey),
        )
        # Freeze the mappings too, so a caller's dict cannot change the ring later.
        object.__setattr__(self, "encryption_keys", MappingProxyType(dict(self.encryption_keys)))
        object.__setattr__(self, "signing_keys", MappingProxyType(dict(self.signing_keys)))


def _check_keys(
    kind: str, keys: Mapping[str, object], active_id: str, valid: Callable[[object], bool]
) -> None:
    if not keys:
        raise ValueError(f"the key ring has no {kind} keys")
    for key_id, key in keys.items():
        if not is_valid_key_id(key_id):
            raise ValueError(f"invalid {kind} key id {key_id!r}")
        if not valid(key):
            raise ValueError(f"{kind} key {key_id!r} has the wrong type or size")
    if active_id not in keys:
        raise ValueError(f"active {kind} key id {active_id!r} is not in the key ring")


def _new_key_id(taken: set[str]) -> str:
    # Readable (creation date) and unique (random suffix), e.g. "k-20261123-3f9a1c".
    while True:
        key_id = f"k-{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(3)}"
        if key_id not in taken:
            return key_id


def generate_key_ring() -> KeyRing:
    """A fresh ring: one new HMAC key, one encryption key and one signing key."""
    key_id = _new_key_id(set())
    return KeyRing(
        hmac_key=secrets.token_bytes(HMAC_KEY_BYTES),
        encryption_keys={key_id: secrets.token_bytes(ENCRYPTION_KEY_BYTES)},
        active_encryption_key_id=key_id,
        signing_keys={key_id: Ed25519PrivateKey.generate()},
        active_signing_key_id=key_id,
    )


def rotate(ring: KeyRing) -> KeyRing:
    """A ring with a new active encryption key and signing key; old keys stay for reading."""
    key_id = _new_key_id(set(ring.encryption_keys) | set(ring.signing_keys))
    return KeyRing(
        hmac_key=ring.hmac_key,
        encryption_keys={**ring.encryption_keys, key_id: secrets.token_bytes(ENCRYPTION_KEY_BYTES)},
        active_encryption_key_id=key_id,
        signing_keys={**ring.signing_keys, key_id: Ed25519PrivateKey.generate()},
        active_signing_key_id=key_id,
    )


def add_encryption_key(ring: KeyRing) -> KeyRing:
    """A ring with a new active encryption key; every other key stays (the old
    encryption keys for reading until `eid-server rotate-keys` moved their
    blobs). The HMAC and signing keys are untouched."""
    key_id = _new_key_id(set(ring.encryption_keys) | set(ring.signing_keys))
    return KeyRing(
        hmac_key=ring.hmac_key,
        encryption_keys={**ring.encryption_keys, key_id: secrets.token_bytes(ENCRYPTION_KEY_BYTES)},
        active_encryption_key_id=key_id,
        signing_keys=ring.signing_keys,
        active_signing_key_id=ring.active_signing_key_id,
    )


def retired_encryption_keys(ring: KeyRing) -> list[str]:
    """The encryption keys other than the active one."""
    return sorted(k for k in ring.encryption_keys if k != ring.active_encryption_key_id)


def without_retired_encryption_keys(ring: KeyRing) -> KeyRing:
    """The ring with its active encryption key only (once no blob needs another)."""
    active = ring.active_encryption_key_id
    return KeyRing(
        hmac_key=ring.hmac_key,
        encryption_keys={active: ring.encryption_keys[active]},
        active_encryption_key_id=active,
        signing_keys=ring.signing_keys,
        active_signing_key_id=ring.active_signing_key_id,
    )


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise ValueError("key ring: a key is not a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("key ring: a key is not valid base64") from None


def key_ring_to_json(ring: KeyRing) -> str:
    """Serialise the ring (secret material included) as JSON."""
    signing = {
        key_id: _b64(key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))
        for key_id, key in ring.signing_keys.items()
    }
    document = {
        "version": _FORMAT_VERSION,
        "hmac_key": _b64(ring.hmac_key),
        "encryption_keys": {key_id: _b64(key) for key_id, key in ring.encryption_keys.items()},
        "active_encryption_key_id": ring.active_encryption_key_id,
        "signing_keys": signing,
        "active_signing_key_id": ring.active_signing_key_id,
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _key_map(document: dict[str, Any], name: str) -> dict[str, bytes]:
    value = document.get(name)
    if not isinstance(value, dict):
        raise ValueError(f"key ring: {name!r} must be an object")
    return {key_id: _unb64(encoded) for key_id, encoded in value.items()}


def _signing_key(raw: bytes) -> Ed25519PrivateKey:
    if len(raw) != _ED25519_KEY_BYTES:
        raise ValueError("key ring: a signing key has the wrong size")
    return Ed25519PrivateKey.from_private_bytes(raw)


def key_ring_from_json(text: str) -> KeyRing:
    """Parse what `key_ring_to_json` wrote; ValueError (without key material) if it is not valid."""
    try:
        document = json.loads(text)
    except ValueError:
        raise ValueError("key ring: not valid JSON") from None
    if not isinstance(document, dict):
        raise ValueError("key ring: expected a JSON object")
    if document.get("version") != _FORMAT_VERSION:
        raise ValueError(f"key ring: unsupported version (expected {_FORMAT_VERSION})")
    active_encryption = document.get("active_encryption_key_id")
    active_signing = document.get("active_signing_key_id")
    if not isinstance(active_encryption, str) or not isinstance(active_signing, str):
        raise ValueError("key ring: active key ids must be strings")
    signing = {
        key_id: _signing_key(raw) for key_id, raw in _key_map(document, "signing_keys").items()
    }
    return KeyRing(
        hmac_key=_unb64(document.get("hmac_key")),
        encryption_keys=_key_map(document, "encryption_keys"),
        active_encryption_key_id=active_encryption,
        signing_keys=signing,
        active_signing_key_id=active_signing,
    )


class KeyRingUnreadable(ValueError):
    """The key ring file cannot be read, or holds no key ring; the message
    names the file and why, never a key."""


def load_key_ring(path: Path) -> KeyRing:
    """Read a key ring file written by `save_key_ring`; KeyRingUnreadable
    when it cannot."""
    try:
        return key_ring_from_json(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:  # its message would quote the file's bytes
        raise KeyRingUnreadable(f"{path}: not UTF-8 text") from None
    except RecursionError:  # JSON nested deeper than the parser goes
        raise KeyRingUnreadable(f"{path}: not valid JSON") from None
    except OSError as failed:
        raise KeyRingUnreadable(f"{path}: {failed.strerror or type(failed).__name__}") from None
    except ValueError as bad:
        raise KeyRingUnreadable(f"{path}: {str(bad).removeprefix('key ring: ')}") from None


def save_key_ring(ring: KeyRing, path: Path) -> None:
    """Write the ring to a new file, mode 0600, atomically; FileExistsError if `path` exists.

    The data goes to a temporary file in the same directory first and is then
    hard-linked into place: the link either appears complete or not at all, and
    unlike a rename it fails instead of replacing a file that exists, so an
    existing key ring (and with it every encrypted field) is never clobbered.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.exists():
        raise FileExistsError(f"refusing to overwrite the key ring at {path}")
    data = key_ring_to_json(ring).encode("utf-8")
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as tmp:
            os.fchmod(tmp.fileno(), 0o600)
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.link(tmp_name, path)  # raises FileExistsError if someone else won the race
    finally:
        os.unlink(tmp_name)
    _fsync_dir(path.parent)


def replace_key_ring(ring: KeyRing, path: Path) -> None:
    """Replace the ring at `path` atomically (mode 0600): readers see the old
    file or the new one, whole. For rotations, whose new ring holds every key
    the old one did that may still be needed."""
    data = key_ring_to_json(ring).encode("utf-8")
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as tmp:
            os.fchmod(tmp.fileno(), 0o600)
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    # Make the new directory entry durable, not only the file's contents.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
