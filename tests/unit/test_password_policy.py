"""New-password rules: length in NFC characters and the guessable-password list."""

from __future__ import annotations

import unicodedata

import pytest

from eid_service.domain.errors import InvalidInput
from eid_service.domain.password_policy import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    check_new_password,
)

PID = "001190791514"


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def rejection(password: str, personal_id: str = PID) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        check_new_password(password, personal_id=personal_id)
    exc = info.value
    assert [(v.field, v.reason) for v in exc.violations] == [("new_password", exc.reason)]
    if len(password) >= 4:
        assert password not in exc.message
    assert PID not in exc.message
    return exc


def test_limits() -> None:
    assert (MIN_PASSWORD_LENGTH, MAX_PASSWORD_LENGTH) == (10, 128)


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery",
        "Tôi yêu Hà Nội 2024!",
        nfd("Tôi yêu Hà Nội 2024!"),
        "Hanoi 2024",  # exactly 10
        "x1" * 64,  # exactly 128
        "1234567890123456",  # 16 digits: long enough to be digits only
        "ab" * 5,
        "Password123!",
    ],
)
def test_acceptable_passwords(password: str) -> None:
    check_new_password(password, personal_id=PID)


@pytest.mark.parametrize("password", ["", "a", "abcdefghi", "Mật khẩu!"])
def test_too_short(password: str) -> None:
    assert rejection(password).reason == "PASSWORD_TOO_SHORT"


@pytest.mark.parametrize("password", ["x1" * 64 + "y", "a" * 1000])
def test_too_long(password: str) -> None:
    assert rejection(password).reason == "PASSWORD_TOO_LONG"


def test_length_counts_nfc_characters() -> None:
    nine = "ễ" * 4 + "abcde"
    assert len(nfd(nine)) > MIN_PASSWORD_LENGTH
    assert rejection(nfd(nine)).reason == "PASSWORD_TOO_SHORT"
    longest = "ễa" * 64
    assert len(nfd(longest)) > MAX_PASSWORD_LENGTH
    check_new_password(nfd(longest), personal_id=PID)


@pytest.mark.parametrize(
    "password",
    [
        PID,
        f"my id {PID}!",
        f"{PID}abc",
        "aaaaaaaaaa",
        "          ",
        "ễễễễễễễễễễ",
        nfd("ễễễễễễễễễễ"),
        "1234567890",
        "9876543210",
        "123456789012345",  # 15 digits
        "1990051719",
        "password123",
        "PASSWORD123",
        "PassWord123",
        "qwertyuiop",
        "QWERTYUIOP",
        "matkhau123",
        "1q2w3e4r5t",
    ],
)
def test_too_weak(password: str) -> None:
    assert rejection(password).reason == "PASSWORD_TOO_WEAK"


def test_weak_reason_says_why_without_echoing() -> None:
    assert "ID number" in rejection(f"x{PID}x").message
    assert "repeated" in rejection("zzzzzzzzzzzz").message
    assert "digits only" in rejection("12345678901").message
    assert "common" in rejection("password123").message


def test_an_empty_personal_id_does_not_make_everything_weak() -> None:
    check_new_password("correct horse battery", personal_id="")


def test_the_id_check_is_per_account() -> None:
    check_new_password(f"x{PID}x", personal_id="079085603693")


def test_field_name_is_reported_as_given() -> None:
    with pytest.raises(InvalidInput) as info:
        check_new_password("short", personal_id=PID, field="password")
    assert info.value.violations[0].field == "password"
