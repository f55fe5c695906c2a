"""The account state machine and what an account shows in logs."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest

from eid_service.domain.account import (
    Account,
    AccountLevel,
    AccountState,
    new_account_id,
)
from eid_service.domain.citizen import Demographics, Gender
from eid_service.domain.errors import PreconditionFailed

CREATED = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 23, 9, 5, tzinfo=UTC)
LAN = Demographics("001190791514", "Nguyễn Thị Lan", date(1990, 5, 17), Gender.FEMALE)


def account(state: AccountState = AccountState.PENDING) -> Account:
    return Account(
        id="acc_test",
        demographics=LAN,
        phone="+84912345678",
        email="lan@example.com",
        level=AccountLevel.LEVEL_1,
        state=state,
        created_at=CREATED,
    )


def test_new_account_is_pending_without_password() -> None:
    acc = account()
    assert acc.activated_at is None
    assert acc.password_hash is None


def test_activate_from_pending() -> None:
    acc = account()
    acc.activate("$argon2id$hash", LATER)
    assert acc.state is AccountState.ACTIVE
    assert acc.password_hash == "$argon2id$hash"
    assert acc.activated_at == LATER
    acc.require_active()


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (AccountState.ACTIVE, "ACCOUNT_ALREADY_ACTIVE"),
        (AccountState.LOCKED, "ACCOUNT_LOCKED"),
    ],
)
def test_activate_is_refused_outside_pending(state: AccountState, reason: str) -> None:
    acc = account(state)
    with pytest.raises(PreconditionFailed) as info:
        acc.activate("$argon2id$new", LATER)
    assert info.value.reason == reason
    assert acc.state is state
    assert acc.password_hash is None
    assert acc.activated_at is None


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (AccountState.ACTIVE, "ACCOUNT_ALREADY_ACTIVE"),
        (AccountState.LOCKED, "ACCOUNT_LOCKED"),
    ],
)
def test_state_is_checked_before_the_hash(state: AccountState, reason: str) -> None:
    # Callers rely on activate("") to raise the state's own reason.
    with pytest.raises(PreconditionFailed) as info:
        account(state).activate("", LATER)
    assert info.value.reason == reason


def test_activate_needs_a_hash() -> None:
    acc = account()
    with pytest.raises(ValueError, match="password hash"):
        acc.activate("", LATER)
    assert acc.state is AccountState.PENDING


def test_second_activation_is_refused() -> None:
    acc = account()
    acc.activate("h1", LATER)
    with pytest.raises(PreconditionFailed) as info:
        acc.activate("h2", LATER)
    assert info.value.reason == "ACCOUNT_ALREADY_ACTIVE"
    assert acc.password_hash == "h1"


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (AccountState.PENDING, "ACCOUNT_NOT_ACTIVE"),
        (AccountState.LOCKED, "ACCOUNT_LOCKED"),
    ],
)
def test_require_active_refuses(state: AccountState, reason: str) -> None:
    with pytest.raises(PreconditionFailed) as info:
        account(state).require_active()
    assert info.value.reason == reason


def test_require_active_passes_when_active() -> None:
    account(AccountState.ACTIVE).require_active()


def test_repr_hides_personal_data() -> None:
    acc = account()
    acc.activate("$argon2id$secret-hash", LATER)
    text = repr(acc)
    assert "acc_test" in text
    for secret in ("001190791514", "Nguyễn", "+84912345678", "lan@example.com", "secret-hash"):
        assert secret not in text


def test_levels_are_ordered() -> None:
    assert AccountLevel.LEVEL_1 < AccountLevel.LEVEL_2
    assert [int(level) for level in AccountLevel] == [1, 2]


def test_state_values() -> None:
    assert [s.value for s in AccountState] == [
        "pending",
        "active",
        "locked",
        "deactivated",
        "dependant",
    ]


def test_new_account_id_is_opaque_and_unique() -> None:
    ids = {new_account_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"acc_[0-9a-f]{26}", i) for i in ids)
