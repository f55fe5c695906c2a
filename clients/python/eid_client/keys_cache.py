"""The keys that verify offline shares, fetched once and kept in a cache file.

A verifier fetches the published keys once (GetVerificationKeys, no
authentication), keeps them in ``$XDG_CACHE_HOME/eid/keys-<host_port>.json``
(else ``~/.cache/eid/...``) and checks offline shares without the network from
then on. The cache is fetched again when asked (``refresh=True``, ``eid keys
--refresh``) and, once, when a payload names a key id the cache does not hold
(the signing key was rotated since); a key still unknown after that fails with
SHARE_KEY_UNKNOWN. A key file can also be given explicitly (``--keys FILE``), in
the cache's format (:meth:`KeySet.to_json`, with retirement and revocation) or
as a JWKS document, so that verification works with no server at all.

Revocation of a share never reaches an offline verifier; revocation of a key
does, the next time the keys are fetched.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import re
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from eid.v1 import identity_service_pb2 as pb
from eid_client._files import write_atomically
from eid_client.offline import (
    KeySet,
    OfflineCredential,
    OfflineVerificationError,
    VerificationKey,
    verify_offline,
)

__all__ = [
    "KeyCache",
    "OfflineChecks",
    "cache_file_for",
    "default_cache_dir",
    "key_set_from_response",
    "read_keys_file",
    "verify_with_cache",
    "verify_with_cache_async",
    "write_keys_file",
]

_TRUSTED_STATES = (pb.VERIFICATION_KEY_STATE_CURRENT, pb.VERIFICATION_KEY_STATE_RETIRED)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/eid``, else ``~/.cache/eid``."""
    base = os.environ.get("XDG_CACHE_HOME")
    # The XDG spec: a relative path in the variable is invalid and must be ignored.
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".cache"
    return root / "eid"


def cache_file_for(target: str, cache_dir: Path | None = None) -> Path:
    """The cache file of the server at ``target`` (host:port), one per server."""
    name = re.sub(r"[^A-Za-z0-9.-]+", "_", target).strip("_.") or "default"
    return (cache_dir or default_cache_dir()) / f"keys-{name}.json"


def key_set_from_response(response: pb.GetVerificationKeysResponse) -> KeySet:
    """The verifier's keys from a GetVerificationKeys answer: the JWKS document
    and the key list, which must agree; a REVOKED key (only in the list) is kept
    as revoked so that what it signed is refused, a RETIRED one with its
    ``not_after``. A key in an unknown state is treated as revoked."""
    published = KeySet.from_jwks(response.jwks_json) if response.jwks_json else KeySet([])
    keys: list[VerificationKey] = []
    for listed in response.keys:
        in_jwks = published.get(listed.key_id)
        if in_jwks is not None and in_jwks.public_key != listed.public_key:
            raise ValueError(f"key {listed.key_id}: the key list and the JWKS disagree")
        trusted = listed.state in _TRUSTED_STATES
        # A key for another algorithm, in any state: it signed nothing we read, and
        # its public key (not 32 Ed25519 bytes) would make the whole KeySet fail.
        if listed.algorithm not in ("", "EdDSA"):
            continue
        not_after = (
            listed.not_after.ToDatetime(tzinfo=datetime.UTC)
            if listed.HasField("not_after")
            else None
        )
        keys.append(VerificationKey(listed.key_id, listed.public_key, not_after, not trusted))
    listed_ids = {listed.key_id for listed in response.keys}
    keys.extend(k for k in published.values() if k.key_id not in listed_ids)
    return KeySet(keys)


def read_keys_file(path: Path) -> KeySet:
    """Keys from a file in the cache's format or a JWKS document; ValueError
    (naming the file, not its contents) when it is neither."""
    refused = ValueError(f"{path}: not an eid keys file nor a JWKS document")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:  # its message would name a byte, not the file
        raise refused from None
    try:
        return KeySet.from_json(text)
    except ValueError:
        pass
    try:
        return KeySet.from_jwks(text)
    except ValueError:
        raise refused from None


def write_keys_file(path: Path, keys: KeySet, *, jwks: bool = False) -> None:
    """Write ``keys`` atomically: a reader never sees half a file. ``jwks=True``
    writes a JWKS document, which cannot say which keys are retired or revoked
    (revoked keys are left out)."""
    text = keys.to_jwks() if jwks else keys.to_json()
    path.parent.mkdir(parents=True, exist_ok=True)
    # 0644: public keys, readable by the verifiers' other tools.
    write_atomically(path, (text + "\n").encode("utf-8"), 0o644)


# Far above any key set's size: a file larger is not one of ours.
MAX_CACHE_BYTES = 1 << 20


def _read_trusted(path: Path) -> str:
    """The cache file's text, if only this user (or root) could have written
    it: these keys decide which offline credentials are genuine, so a file
    another user planted (a shared or world-writable cache folder) must not
    be believed. Whoever writes a file owns it, so its owner and mode say
    it, whatever its folder. Not followed if a link (the cache writes by
    renaming, never a link), and read only up to MAX_CACHE_BYTES (a planted
    /dev/zero, say). OSError otherwise."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        owner = getattr(os, "getuid", None)  # Windows has neither owners nor modes here
        if not stat.S_ISREG(info.st_mode) or (
            # root's too: a deployment may provision the cache, and root can write anything.
            owner is not None and (info.st_uid not in (owner(), 0) or info.st_mode & 0o022)
        ):
            raise PermissionError(f"{path}: another user could have written it")
        data = f.read(MAX_CACHE_BYTES + 1)
    if len(data) > MAX_CACHE_BYTES:
        raise OSError(f"{path}: larger than a key cache")
    return data.decode("utf-8")


class KeyCache:
    """One cache file, and the keys last read from it or written to it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._keys: KeySet | None = None

    @classmethod
    def for_target(cls, target: str, cache_dir: Path | None = None) -> KeyCache:
        return cls(cache_file_for(target, cache_dir))

    def load(self) -> KeySet | None:
        """The cached keys, or None when there are none yet. A damaged or unreadable
        cache file counts as none, and so does one another user could have
        written: the keys are fetched again (and the file overwritten when it
        can be)."""
        if self._keys is None:
            try:
                self._keys = KeySet.from_json(_read_trusted(self.path))
            except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
                return None
        return self._keys

    def save(self, keys: KeySet) -> None:
        """Keep ``keys`` and write them to the file; OSError if it cannot be written."""
        self._keys = keys
        write_keys_file(self.path, keys)

    def keep(self, keys: KeySet) -> bool:
        """Keep ``keys`` for this object's life and, if possible, in the file: an
        unwritable cache (read-only home, full disk) must not stop a verification.
        Whether the file was written."""
        try:
            self.save(keys)
        except OSError:
            return False
        return True


@dataclass(frozen=True)
class OfflineChecks:
    """The checks :func:`eid_client.offline.verify_offline` makes besides the keys."""

    audience: str | None = None
    issuer: str | None = None
    now: datetime.datetime | None = None
    clock_skew: datetime.timedelta = datetime.timedelta(seconds=60)

    def verify(self, payload: str, keys: KeySet) -> OfflineCredential:
        return verify_offline(
            payload,
            keys,
            now=self.now,
            audience=self.audience,
            clock_skew=self.clock_skew,
            issuer=self.issuer,
        )


_NO_KEYS = KeySet([])


def _needs_new_keys(refused: OfflineVerificationError) -> bool:
    return refused.reason == "SHARE_KEY_UNKNOWN"


def _refuse_early(payload: str, checks: OfflineChecks) -> None:
    """Raise the refusal of a payload that no key could save (oversized, online,
    malformed...), so that it never makes anyone fetch keys: with no keys at
    all, a well-formed payload fails on its key id and nothing else."""
    try:
        checks.verify(payload, _NO_KEYS)
    except OfflineVerificationError as refused:
        if not _needs_new_keys(refused):
            raise


def verify_with_cache(
    payload: str,
    cache: KeyCache,
    fetch: Callable[[], KeySet],
    *,
    checks: OfflineChecks = OfflineChecks(),
    refresh: bool = False,
) -> OfflineCredential:
    """Verify with the cached keys, fetching them (``fetch``) when there are none,
    when ``refresh`` is set, or once when the payload names an unknown key.
    Payloads refused whatever the keys (malformed, online...) fetch nothing."""
    _refuse_early(payload, checks)
    keys = None if refresh else cache.load()
    fetched = keys is None
    if keys is None:
        keys = fetch()
        cache.keep(keys)
    try:
        return checks.verify(payload, keys)
    except OfflineVerificationError as refused:
        if fetched or not _needs_new_keys(refused):
            raise
    keys = fetch()
    cache.keep(keys)
    return checks.verify(payload, keys)


async def verify_with_cache_async(
    payload: str,
    cache: KeyCache,
    fetch: Callable[[], Awaitable[KeySet]],
    *,
    checks: OfflineChecks = OfflineChecks(),
    refresh: bool = False,
) -> OfflineCredential:
    """:func:`verify_with_cache` with an async ``fetch``; file access runs in a thread."""
    _refuse_early(payload, checks)
    keys = None if refresh else await asyncio.to_thread(cache.load)
    fetched = keys is None
    if keys is None:
        keys = await fetch()
        await asyncio.to_thread(cache.keep, keys)
    try:
        return checks.verify(payload, keys)
    except OfflineVerificationError as refused:
        if fetched or not _needs_new_keys(refused):
            raise
    keys = await fetch()
    await asyncio.to_thread(cache.keep, keys)
    return checks.verify(payload, keys)
