"""A lock the citizen makes while a password is being compared (Argon2id runs
outside any transaction) holds for that check: through gRPC on SQLite and
PostgreSQL, each comparison held until the lock has answered. Before, the
check recorded its outcome on the account as it was before the comparison:
a thief's SignIn kept a session LockAccount never saw (it came back to life
once an officer unlocked the account), and a party's Verify(password)
answered verified after the citizen had locked the account or the mode."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import pytest

from eid_client.client import EidClient
from eid_client.errors import EidError
from eid_client.retry import RetryPolicy
from eid_service.domain.citizen import Demographics
from eid_service.store.repositories.accounts import AccountRepository
from tests.integration.conftest import Party
from tests.integration.flows import PASSWORD, register_and_activate
from tests.integration.harness import ServerHarness

T = TypeVar("T")


@pytest.fixture
def owner(harness: ServerHarness, citizen_app: EidClient, adult: Demographics) -> str:
    """The citizen's own session, on the phone they still have."""
    register_and_activate(harness, citizen_app, adult)
    return citizen_app.sign_in(personal_id=adult.personal_id, password=PASSWORD).session_token


@pytest.fixture
def comparing(
    harness: ServerHarness, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[Callable[[], T]], tuple[Future[T | str | None], threading.Event]]]:
    """Starts a call whose password comparison waits until released."""
    started, release = threading.Event(), threading.Event()
    compare = harness.hasher.verify

    async def held(stored_hash: str | None, password: str) -> bool:
        started.set()
        await asyncio.to_thread(release.wait, 10)
        return await compare(stored_hash, password)

    monkeypatch.setattr(harness.hasher, "verify", held)
    with ThreadPoolExecutor(1) as pool:

        def start(call: Callable[[], T]) -> tuple[Future[T | str | None], threading.Event]:
            def answer() -> T | str | None:
                try:
                    return call()
                except EidError as e:
                    return e.reason

            done = pool.submit(answer)
            assert started.wait(10), "the comparison never started"
            return done, release

        try:
            yield start
        finally:
            release.set()


def test_a_sign_in_compared_across_a_lock_gets_no_session(
    harness: ServerHarness,
    adult: Demographics,
    owner: str,
    comparing: Callable[[Callable[[], object]], tuple[Future[object], threading.Event]],
) -> None:
    with (
        EidClient(harness.target, retry=RetryPolicy.off()) as thief,
        EidClient(harness.target) as phone,
    ):
        signing_in, release = comparing(
            lambda: thief.sign_in(personal_id=adult.personal_id, password=PASSWORD)
        )
        phone.lock_account(session_token=owner)  # answered while the thief's check runs
        release.set()
        assert signing_in.result(10) == "ACCOUNT_LOCKED"
    assert harness.rows("SELECT count(*) FROM sessions WHERE revoked_at IS NULL") == [(0,)]


@pytest.mark.parametrize(
    ("lock", "reason"),
    [
        (
            lambda phone, owner: phone.lock_verify_mode("password", session_token=owner),
            "AUTH_MODE_LOCKED",
        ),
        (lambda phone, owner: phone.lock_account(session_token=owner), "ACCOUNT_LOCKED"),
    ],
    ids=["mode", "account"],
)
def test_a_verify_compared_across_a_lock_is_refused(
    harness: ServerHarness,
    adult: Demographics,
    owner: str,
    bank: Party,
    comparing: Callable[[Callable[[], object]], tuple[Future[object], threading.Event]],
    lock: Callable[[EidClient, str], object],
    reason: str,
) -> None:
    with EidClient(harness.target) as phone:
        verifying, release = comparing(
            lambda: bank.client.verify_password(personal_id=adult.personal_id, password=PASSWORD)
        )
        lock(phone, owner)
        release.set()
        assert verifying.result(10) == reason


@pytest.fixture
def paused_after_hold(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """The next recording transaction pauses for 1 s just after holding the
    account's row: set once it does (the window a lock must not slip into)."""
    hold, holding = AccountRepository.hold, threading.Event()

    def paused(self: AccountRepository, account_id: str, *, alone: bool = False) -> object:
        state = hold(self, account_id, alone=alone)
        if not holding.is_set():
            holding.set()
            time.sleep(1)
        return state

    monkeypatch.setattr(AccountRepository, "hold", paused)
    return holding


def test_a_lock_waits_for_a_sign_in_holding_the_account(
    harness: ServerHarness, adult: Demographics, owner: str, paused_after_hold: threading.Event
) -> None:
    """The row is held, not only read: a lock landing between the sign-in's
    read and its commit still ends the new session (on PostgreSQL a plain
    read let the lock revoke sessions before the new one committed)."""
    with (
        EidClient(harness.target, retry=RetryPolicy.off()) as thief,
        EidClient(harness.target, retry=RetryPolicy.off()) as phone,
        ThreadPoolExecutor(1) as pool,
    ):
        signing_in = pool.submit(thief.sign_in, personal_id=adult.personal_id, password=PASSWORD)
        assert paused_after_hold.wait(10)
        phone.lock_account(session_token=owner)
        signing_in.result(10)  # the sign-in came first: it has a session, and loses it
    assert harness.rows("SELECT count(*) FROM sessions WHERE revoked_at IS NULL") == [(0,)]


def test_a_verify_holding_the_account_and_a_lock_by_password_do_not_deadlock(
    harness: ServerHarness,
    adult: Demographics,
    owner: str,
    bank: Party,
    paused_after_hold: threading.Event,
) -> None:
    """Both take the ID number's attempt count back, then the account: the
    other order in Verify deadlocked on PostgreSQL (found in review: the lock
    STORE_BUSY after the 1 s deadlock timeout, a right password's count kept)."""
    with (
        EidClient(harness.target, api_key=bank.api_key, retry=RetryPolicy.off()) as party,
        EidClient(harness.target, retry=RetryPolicy.off()) as phone,
        ThreadPoolExecutor(1) as pool,
    ):
        verifying = pool.submit(
            party.verify_password, personal_id=adult.personal_id, password=PASSWORD
        )
        assert paused_after_hold.wait(10)
        locked = phone.lock_account(personal_id=adult.personal_id, password=PASSWORD)
        assert verifying.result(10).verified  # it came first
    assert locked.newly_locked
    assert harness.rows("SELECT DISTINCT state FROM accounts") == [("locked",)]
