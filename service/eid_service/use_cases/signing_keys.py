"""The share-signing keys: made on first start, rotated and revoked by an
operator, published for verifiers, and remembered by each process for a
few seconds (every payload needs them; the store is asked once per TTL)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from eid_client.offline import KeySet, VerificationKey
from eid_service.domain.errors import Conflict, NotFound
from eid_service.domain.share import SharePolicy
from eid_service.domain.signing_key import KeyState, SigningKeyRecord, new_signing_key_id
from eid_service.security.signing_keys import SigningKey, SigningKeySet
from eid_service.use_cases.ports import Repositories, StoredSigningKey, UnitOfWork

# A rotation or revocation reaches every process within this time.
KEY_CACHE_TTL_SECONDS = 5.0


def _raw_private(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def _stored(
    key_id: str, key: Ed25519PrivateKey, now: datetime, *, retired: bool = False
) -> StoredSigningKey:
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    record = SigningKeyRecord(key_id, public, now, retired_at=now if retired else None)
    return StoredSigningKey(record, _raw_private(key))


def new_current_key(r: Repositories, now: datetime) -> str:
    """Adds a new current key (inside a transaction with no current key); its id."""
    taken = {k.record.key_id for k in r.signing_keys.all()}
    key_id = new_signing_key_id()
    while key_id in taken:
        key_id = new_signing_key_id()
    r.signing_keys.add(_stored(key_id, Ed25519PrivateKey.generate(), now))
    return key_id


def longest_share(policy: SharePolicy) -> timedelta:
    """How long after its retirement a key may still have signed something
    valid: the longest share, a process signing with it until its cache
    lapses, and a verifier's clock skew."""
    return policy.max_ttl + timedelta(seconds=KEY_CACHE_TTL_SECONDS) + policy.clock_skew


class SigningKeyCache:
    """The current SigningKeySet of this process."""

    def __init__(
        self,
        policy: SharePolicy,
        ttl: float = KEY_CACHE_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self._ttl = ttl
        self._clock = clock
        self._keys: SigningKeySet | None = None
        self._until = 0.0

    async def current(self, uow: UnitOfWork) -> SigningKeySet:
        # Calls that find it stale together each read it: harmless, and no
        # lock to tie the cache to one event loop.
        if self._keys is not None and self._clock() < self._until:
            return self._keys
        keys = key_set(await uow.read(lambda r: r.signing_keys.all()), self.policy)
        self._keys, self._until = keys, self._clock() + self._ttl
        return keys

    def forget(self) -> None:
        """Read the keys again on next use (after this process changed them)."""
        self._until = 0.0


def key_set(stored: Iterable[StoredSigningKey], policy: SharePolicy) -> SigningKeySet:
    """The SigningKeySet of keys as stored."""
    return SigningKeySet(
        (SigningKey(k.record, Ed25519PrivateKey.from_private_bytes(k.private_key)) for k in stored),
        issuer=policy.issuer,
        longest_share=longest_share(policy),
    )


async def ensure_signing_key(
    uow: UnitOfWork, legacy: dict[str, Ed25519PrivateKey], now: datetime
) -> bool:
    """Makes a current key if there is none; True if it did. On the very first
    start the key ring's old signing keys come along, retired, so online
    tokens they signed keep working until they expire. Two processes starting
    at once make one key (the store allows one current key)."""

    def ensure(r: Repositories) -> bool:
        r.signing_keys.lock_for_change()
        stored = r.signing_keys.all()
        if any(k.record.state is KeyState.CURRENT for k in stored):
            return False
        if not stored:
            for key_id, key in legacy.items():
                r.signing_keys.add(_stored(key_id, key, now, retired=True))
        new_current_key(r, now)
        return True

    try:
        return await uow.atomically(ensure)
    except Conflict:
        return False


async def rotate_signing_key(uow: UnitOfWork, now: datetime) -> str:
    """A new current key; the old one retires (what it signed verifies until it expires)."""

    def rotate(r: Repositories) -> str:
        r.signing_keys.lock_for_change()  # or two at once both make a current key
        r.signing_keys.retire_current(now)
        return new_current_key(r, now)

    return await uow.atomically(rotate)


async def revoke_signing_key(uow: UnitOfWork, key_id: str, now: datetime) -> str | None:
    """Revokes a key: nothing it signed verifies any more. If it was the
    current key a new one takes over; its id is returned (else None)."""

    def revoke(r: Repositories) -> str | None:
        r.signing_keys.lock_for_change()  # was_current must not change under us
        was_current = any(
            k.record.key_id == key_id and k.record.state is KeyState.CURRENT
            for k in r.signing_keys.all()
        )
        if not r.signing_keys.revoke(key_id, now):
            raise NotFound(
                reason="SIGNING_KEY_NOT_FOUND", message="no unrevoked signing key has this id"
            )
        return new_current_key(r, now) if was_current else None

    return await uow.atomically(revoke)


@dataclass(frozen=True)
class PublishedKey:
    record: SigningKeyRecord
    not_after: datetime | None


@dataclass(frozen=True)
class PublishedKeys:
    keys: list[PublishedKey]
    jwks_json: str
    issuer: str


async def published_keys(uow: UnitOfWork, cache: SigningKeyCache, now: datetime) -> PublishedKeys:
    """What GetVerificationKeys tells: current, retired and revoked keys while they matter."""
    keys = await cache.current(uow)
    span = longest_share(cache.policy)
    shown = [
        PublishedKey(record, record.not_after(span))
        for record in keys.records
        if record.published(now, span)
    ]
    trusted = KeySet(
        VerificationKey(p.record.key_id, p.record.public_key, p.not_after)
        for p in shown
        if p.record.state is not KeyState.REVOKED
    )
    return PublishedKeys(shown, trusted.to_jwks(), keys.issuer)
