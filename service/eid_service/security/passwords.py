"""Password hashing with Argon2id, run off the event loop.

Argon2id with the OWASP minimum profile (19 MiB, 2 passes, 1 lane) by
default. argon2-cffi releases the GIL while hashing, so a thread pool gives
real parallelism and the asyncio loop keeps serving other calls meanwhile.
The pool size also caps memory: at most one 19 MiB buffer per worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import threading
import unicodedata
from concurrent.futures import Executor, ThreadPoolExecutor

import argon2
from argon2.exceptions import VerificationError

from eid_service.telemetry import spans

# Hash threads run this much nicer than the rest of the process (Linux
# schedules threads one by one): a flood of password checks keeps them busy,
# but the event loop, and so every other call, is scheduled first.
HASH_THREAD_NICENESS = 10


def _yield_to_the_event_loop() -> None:
    thread = threading.get_native_id()
    # Only ever lowered (no privilege needed); where it cannot be, nothing changes.
    with contextlib.suppress(OSError, AttributeError):
        niceness = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, niceness + HASH_THREAD_NICENESS))


def _normalise(password: str) -> str:
    # Vietnamese keyboards produce either precomposed or combining diacritics
    # for the same visible text ("ệ"); NFC makes both forms the same password.
    return unicodedata.normalize("NFC", password)


class PasswordHasher:
    """Async Argon2id hashing and verification."""

    def __init__(
        self,
        executor: Executor | None = None,
        *,
        threads: int | None = None,
        time_cost: int = 2,
        memory_cost: int = 19456,
        parallelism: int = 1,
    ) -> None:
        self._argon2 = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=argon2.Type.ID,
        )
        self._owns_executor = executor is None
        self._executor: Executor = executor or ThreadPoolExecutor(
            max_workers=threads or os.cpu_count() or 1,
            thread_name_prefix="argon2",
            initializer=_yield_to_the_event_loop,
        )
        # Verifying an unknown account against this hash costs as much as a
        # real check, so response time does not reveal whether an account exists.
        self._dummy_hash = self._argon2.hash(secrets.token_urlsafe(16))

    def __repr__(self) -> str:
        p = self._argon2
        return (
            f"PasswordHasher(argon2id, time_cost={p.time_cost}, "
            f"memory_cost={p.memory_cost}, parallelism={p.parallelism})"
        )

    def hash_sync(self, password: str) -> str:
        """Hash on the calling thread (CLI, tests); servers use `hash`."""
        return self._argon2.hash(_normalise(password))

    async def hash(self, password: str) -> str:
        """The encoded Argon2id hash ("$argon2id$v=19$m=...") of `password`."""
        loop = asyncio.get_running_loop()
        with spans.span("eid.password.hash"):
            return await loop.run_in_executor(self._executor, self.hash_sync, password)

    def _verify_sync(self, stored_hash: str, password: str) -> bool:
        try:
            return self._argon2.verify(stored_hash, _normalise(password))
        except (VerificationError, ValueError):
            # Mismatch, corrupt or non-ASCII stored hash (InvalidHashError and
            # UnicodeError are ValueErrors): all mean "not this password".
            return False

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """True only if `password` matches `stored_hash`; False (never raises) otherwise.

        `stored_hash=None` (no such account, or no password set yet) still
        spends one full verification before returning False.
        """
        target = self._dummy_hash if stored_hash is None else stored_hash
        loop = asyncio.get_running_loop()
        # The same span for a dummy check: a trace must not tell whether the account exists.
        with spans.span("eid.password.verify"):
            ok = await loop.run_in_executor(self._executor, self._verify_sync, target, password)
        return ok and stored_hash is not None

    def needs_rehash(self, stored_hash: str) -> bool:
        """True if the hash was made with other parameters (or is not a valid Argon2 hash)."""
        try:
            return self._argon2.check_needs_rehash(stored_hash)
        except ValueError:  # InvalidHashError or non-ASCII: replace it on next sign-in
            return True

    def close(self) -> None:
        """Shut down the thread pool if this hasher created it (a passed-in one is left alone)."""
        if self._owns_executor:
            self._executor.shutdown(wait=True)
