"""Activation codes: generation and input format."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest

from eid_service.domain.activation import (
    ACTIVATION_CODE_DIGITS,
    ACTIVATION_CODE_TTL,
    MAX_ACTIVATION_ATTEMPTS,
    new_activation_code,
    parse_activation_code,
)
from eid_service.domain.errors import InvalidInput


def fullwidth(ascii_digits: str) -> str:
    """The same digits as full-width forms (what some phone keyboards type)."""
    return ascii_digits.translate({ord(d): 0xFF10 + int(d) for d in "0123456789"})


def test_constants() -> None:
    assert ACTIVATION_CODE_DIGITS == 6
    assert timedelta(minutes=10) == ACTIVATION_CODE_TTL
    assert MAX_ACTIVATION_ATTEMPTS == 5


def test_codes_are_six_ascii_digits_and_vary() -> None:
    codes = [new_activation_code() for _ in range(2000)]
    assert all(len(c) == 6 and c.isascii() and c.isdigit() for c in codes)
    assert len(set(codes)) > 1900
    # Every position takes many values: no fixed digit.
    assert all(len({c[i] for c in codes}) == 10 for i in range(6))


@pytest.mark.parametrize(("drawn", "code"), [(0, "000000"), (42, "000042"), (999_999, "999999")])
def test_codes_keep_leading_zeros(monkeypatch: pytest.MonkeyPatch, drawn: int, code: str) -> None:
    bounds: list[int] = []

    def fake_randbelow(n: int) -> int:
        bounds.append(n)
        return drawn

    monkeypatch.setattr(secrets, "randbelow", fake_randbelow)
    assert new_activation_code() == code
    assert bounds == [1_000_000]  # uniform over the whole code space


@pytest.mark.parametrize(
    ("raw", "code"), [("123456", "123456"), ("000042", "000042"), (" 012345 ", "012345")]
)
def test_parse_accepts_six_digits(raw: str, code: str) -> None:
    assert parse_activation_code(raw) == code


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "12345",
        "1234567",
        "12a456",
        "123 456",
        "123-456",
        fullwidth("123456"),
        "+12345",
        "-12345",
    ],
)
def test_parse_rejects(raw: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_activation_code(raw)
    exc = info.value
    assert exc.reason == "ACTIVATION_CODE_MALFORMED"
    assert [(v.field, v.reason) for v in exc.violations] == [
        ("activation_code", "ACTIVATION_CODE_MALFORMED")
    ]
    if raw.strip():
        assert raw.strip() not in exc.message


def test_parse_uses_the_given_field() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_activation_code("x", field="code")
    assert info.value.violations[0].field == "code"
