"""Argon2id password hashing: correctness, no account-existence oracle, parameters, executor."""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from eid_service.security.passwords import PasswordHasher

T = TypeVar("T")


def _fast_hasher(executor: Executor | None = None) -> PasswordHasher:
    # Tiny Argon2 parameters keep the tests fast; one test checks the real defaults.
    return PasswordHasher(executor, time_cost=1, memory_cost=1024, parallelism=1)


class CountingExecutor(ThreadPoolExecutor):
    """A thread pool that counts the jobs it was given."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.submitted = 0

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


@pytest.fixture
def executor() -> Iterator[CountingExecutor]:
    pool = CountingExecutor()
    yield pool
    pool.shutdown()


@pytest.fixture
def hasher(executor: CountingExecutor) -> Iterator[PasswordHasher]:
    password_hasher = _fast_hasher(executor)
    yield password_hasher
    password_hasher.close()


async def test_hash_verifies_only_the_same_password(hasher: PasswordHasher) -> None:
    stored = await hasher.hash("correct horse battery staple")

    assert await hasher.verify(stored, "correct horse battery staple")
    assert not await hasher.verify(stored, "correct horse battery stapler")
    assert not await hasher.verify(stored, "")


async def test_hash_is_salted(hasher: PasswordHasher) -> None:
    first, second = await hasher.hash("same"), await hasher.hash("same")

    assert first != second
    assert await hasher.verify(first, "same")
    assert await hasher.verify(second, "same")
    assert "same" not in first


async def test_hashing_runs_in_the_executor(
    hasher: PasswordHasher, executor: CountingExecutor
) -> None:
    stored = await hasher.hash("pw")
    await hasher.verify(stored, "pw")

    assert executor.submitted == 2


async def test_unknown_account_costs_one_full_verification(
    hasher: PasswordHasher, executor: CountingExecutor
) -> None:
    # No early return for a missing hash: the response time must not tell
    # whether the account exists.
    assert not await hasher.verify(None, "anything")
    assert executor.submitted == 1


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "not-a-hash",
        "$argon2id$",
        "$argon2id$v=19$m=x,t=1,p=1$AAAA$AAAA",
        "$argon2id$v=19$m=1024,t=1,p=1$é$AAAA",
        "$2b$12$abcdefghijklmnopqrstuuJ3Yqv1F6k5s0lZ2Y7r8b9c0d1e2f3g4",
    ],
)
async def test_invalid_stored_hash_is_a_mismatch_not_an_error(
    hasher: PasswordHasher, stored: str
) -> None:
    assert not await hasher.verify(stored, "pw")


async def test_composed_and_decomposed_diacritics_are_the_same_password(
    hasher: PasswordHasher,
) -> None:
    typed_composed = unicodedata.normalize("NFC", "Nguyễn Văn An 1990")
    typed_combining = unicodedata.normalize("NFD", typed_composed)
    assert typed_composed != typed_combining

    stored = await hasher.hash(typed_composed)

    assert await hasher.verify(stored, typed_combining)


async def test_sync_and_async_hashes_are_interchangeable(hasher: PasswordHasher) -> None:
    assert await hasher.verify(hasher.hash_sync("pw"), "pw")


async def test_concurrent_verifications_each_get_the_right_answer(
    hasher: PasswordHasher,
) -> None:
    stored = await hasher.hash("pw")

    results = await asyncio.gather(
        *(hasher.verify(stored, "pw" if i % 2 == 0 else "wrong") for i in range(10))
    )

    assert results == [i % 2 == 0 for i in range(10)]


def test_defaults_are_the_owasp_argon2id_profile() -> None:
    default_hasher = PasswordHasher()
    try:
        stored = default_hasher.hash_sync("pw")
    finally:
        default_hasher.close()

    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_needs_rehash_when_parameters_change(
    hasher: PasswordHasher, executor: CountingExecutor
) -> None:
    stronger = PasswordHasher(executor, time_cost=2, memory_cost=2048, parallelism=1)
    current = hasher.hash_sync("pw")

    assert not hasher.needs_rehash(current)
    assert stronger.needs_rehash(current)
    assert hasher.needs_rehash("not-a-hash")


def test_repr_names_parameters_only(hasher: PasswordHasher) -> None:
    assert "argon2id" in repr(hasher)
    assert "$argon2" not in repr(hasher)  # not even the dummy hash


async def test_close_shuts_down_its_own_pool() -> None:
    own = _fast_hasher()
    own.close()

    with pytest.raises(RuntimeError):
        await own.hash("pw")


async def test_close_leaves_a_shared_executor_running(executor: CountingExecutor) -> None:
    _fast_hasher(executor).close()

    assert executor.submit(lambda: 41 + 1).result() == 42
