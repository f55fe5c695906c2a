"""Names, birth dates, ages and demographic matching."""

from __future__ import annotations

import unicodedata
from datetime import date, timedelta

import pytest

from eid_service.domain.citizen import (
    MIN_SELF_REGISTRATION_AGE,
    Demographics,
    Gender,
    age_on,
    demographics_match,
    normalize_name,
    parse_birth_date,
    parse_full_name,
    require_self_registration_age,
)
from eid_service.domain.errors import InvalidInput, PreconditionFailed


def fullwidth(ascii_digits: str) -> str:
    """The same digits as full-width forms (what some phone keyboards type)."""
    return ascii_digits.translate({ord(d): 0xFF10 + int(d) for d in "0123456789"})


TODAY = date(2026, 11, 23)


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def assert_invalid(exc: InvalidInput, field: str, reason: str, raw: str) -> None:
    assert exc.reason == reason
    assert [(v.field, v.reason) for v in exc.violations] == [(field, reason)]
    if raw.strip():
        assert raw.strip() not in exc.message


# --- normalize_name -------------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    [
        "Nguyễn Văn An",
        " nguyễn  văn AN ",
        "NGUYỄN VĂN AN",
        "Nguyễn\tVăn\nAn",
        "Nguyễn\u00a0Văn An",  # no-break space
        nfd("Nguyễn Văn An"),
        nfd(" NGUYỄN văn an "),
    ],
)
def test_normalize_name_ignores_case_spacing_and_composition(variant: str) -> None:
    assert normalize_name(variant) == normalize_name("Nguyễn Văn An")


def test_normalize_name_exact_output() -> None:
    assert normalize_name(nfd("  NGUYỄN   Văn  AN ")) == "nguyễn văn an"


@pytest.mark.parametrize(
    "other",
    [
        "Nguyen Van An",
        "Nguyễn Văn Ân",
        "Nguyễn Vân An",
        "Nguyễn Văn",
        "Nguyễn Văn Anh",
        "NguyễnVăn An",
    ],
)
def test_normalize_name_keeps_diacritics_and_letters_significant(other: str) -> None:
    assert normalize_name(other) != normalize_name("Nguyễn Văn An")


def test_normalize_name_distinguishes_d_and_dj() -> None:
    assert normalize_name("Đặng Thị Mai") != normalize_name("Dặng Thị Mai")


# --- parse_full_name ------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Nguyễn Văn An", "Nguyễn Văn An"),
        ("  Trần   Thị\tBích  Ngọc ", "Trần Thị Bích Ngọc"),
        (nfd("Trần Thị Bích Ngọc"), "Trần Thị Bích Ngọc"),
        ("Y Blốk Niê", "Y Blốk Niê"),
        ("H'Hen Niê", "H'Hen Niê"),
        ("Anne-Marie O'Neil Jr.", "Anne-Marie O'Neil Jr."),
        ("Иван Петров", "Иван Петров"),
        ("李小龍", "李小龍"),
        ("A", "A"),
    ],
)
def test_parse_full_name_normalizes_for_display(raw: str, expected: str) -> None:
    parsed = parse_full_name(raw)
    assert parsed == expected
    assert unicodedata.is_normalized("NFC", parsed)


def test_parse_full_name_keeps_case() -> None:
    assert parse_full_name("nguyễn VĂN an") == "nguyễn VĂN an"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "\t\n",
        "Nguyễn Văn 2",
        "Nguyễn@Văn",
        "Nguyễn_Văn",
        "Nguyễn, Văn",
        "Nguyễn (An)",
        "An 😀",
        "Nguyễn\u200bVăn",  # zero-width space is a format character, not whitespace
        "Nguyễn\x00Văn",
        "-",
        "...",
        "' - .",
        "\u0301\u0303",  # combining marks alone are not a name
        "x" * 101,
        "x" * 1000,
    ],
)
def test_parse_full_name_rejects(raw: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_full_name(raw)
    assert_invalid(info.value, "full_name", "FULL_NAME_INVALID", raw)


def test_parse_full_name_length_counts_nfc_characters() -> None:
    name = "ễ" * 100
    assert len(nfd(name)) == 300
    assert parse_full_name(nfd(name)) == name
    with pytest.raises(InvalidInput):
        parse_full_name("ễ" * 101)


def test_parse_full_name_uses_the_given_field() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_full_name("", field="guardian.full_name")
    assert info.value.violations[0].field == "guardian.full_name"


# --- parse_birth_date -----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1990-05-17", date(1990, 5, 17)),
        (" 1990-05-17 ", date(1990, 5, 17)),
        ("2000-02-29", date(2000, 2, 29)),  # divisible by 400: leap
        ("2012-02-29", date(2012, 2, 29)),
        ("1900-01-01", date(1900, 1, 1)),  # earliest accepted
        ("2026-11-23", TODAY),  # born today
    ],
)
def test_parse_birth_date_accepts(raw: str, expected: date) -> None:
    assert parse_birth_date(raw, TODAY) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "17/05/1990",
        "05/17/1990",
        "19900517",
        "1990-5-17",
        "1990-05-7",
        "90-05-17",
        "1990-W20-4",
        "1990-05-17T00:00:00",
        "+1990-05-17",
        fullwidth("1990-05-17"),
        "1990-02-29",  # not a leap year
        "1900-02-29",  # divisible by 100 but not 400
        "1990-13-01",
        "1990-00-10",
        "1990-04-31",
        "1899-12-31",
        "0001-01-01",
        "2026-11-24",  # tomorrow
        "9999-12-31",
    ],
)
def test_parse_birth_date_rejects(raw: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_birth_date(raw, TODAY)
    assert_invalid(info.value, "birth_date", "BIRTH_DATE_INVALID", raw)


def test_parse_birth_date_uses_the_given_field() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_birth_date("x", TODAY, field="dob")
    assert info.value.violations[0].field == "dob"


# --- age ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("birth", "today", "age"),
    [
        (date(1990, 5, 17), date(2026, 5, 16), 35),
        (date(1990, 5, 17), date(2026, 5, 17), 36),
        (date(1990, 5, 17), date(2026, 11, 23), 36),
        (date(2026, 11, 23), date(2026, 11, 23), 0),
        (date(2012, 11, 23), date(2026, 11, 22), 13),
        (date(2012, 11, 23), date(2026, 11, 23), 14),
        (date(2012, 12, 31), date(2026, 1, 1), 13),
        # Leap-day births: in common years the birthday counts from 1 March.
        (date(2012, 2, 29), date(2026, 2, 28), 13),
        (date(2012, 2, 29), date(2026, 3, 1), 14),
        (date(2012, 2, 29), date(2028, 2, 28), 15),
        (date(2012, 2, 29), date(2028, 2, 29), 16),
        (date(2012, 3, 1), date(2024, 2, 29), 11),
        (date(2012, 3, 1), date(2024, 3, 1), 12),
    ],
)
def test_age_on(birth: date, today: date, age: int) -> None:
    assert age_on(birth, today) == age


def test_age_on_refuses_a_future_birth() -> None:
    with pytest.raises(ValueError, match="before the birth date"):
        age_on(TODAY + timedelta(days=1), TODAY)


@pytest.mark.parametrize(
    ("birth", "today"),
    [
        (date(2012, 11, 23), date(2026, 11, 23)),  # 14th birthday is today
        (date(2012, 11, 22), date(2026, 11, 23)),
        (date(1950, 1, 15), date(2026, 11, 23)),
        (date(2012, 2, 29), date(2026, 3, 1)),
    ],
)
def test_fourteen_and_over_may_self_register(birth: date, today: date) -> None:
    require_self_registration_age(birth, today)


@pytest.mark.parametrize(
    ("birth", "today"),
    [
        (date(2012, 11, 24), date(2026, 11, 23)),  # turns 14 tomorrow
        (date(2012, 11, 23), date(2026, 11, 22)),
        (date(2012, 2, 29), date(2026, 2, 28)),
        (date(2020, 4, 16), date(2026, 11, 23)),
        (date(2026, 11, 23), date(2026, 11, 23)),
    ],
)
def test_under_fourteen_must_be_registered_by_a_guardian(birth: date, today: date) -> None:
    with pytest.raises(PreconditionFailed) as info:
        require_self_registration_age(birth, today)
    assert info.value.reason == "AGE_BELOW_MINIMUM"
    assert "guardian" in info.value.message
    assert info.value.metadata == {"minimum_age": "14"}
    assert MIN_SELF_REGISTRATION_AGE == 14


# --- demographics_match ---------------------------------------------------------

REGISTERED = Demographics("001190791514", "Nguyễn Thị Lan", date(1990, 5, 17), Gender.FEMALE)


@pytest.mark.parametrize(
    "declared",
    [
        REGISTERED,
        Demographics("001190791514", " nguyễn  THỊ lan ", date(1990, 5, 17), Gender.FEMALE),
        Demographics("001190791514", nfd("Nguyễn Thị Lan"), date(1990, 5, 17), Gender.FEMALE),
    ],
)
def test_demographics_match(declared: Demographics) -> None:
    assert demographics_match(declared, REGISTERED)


@pytest.mark.parametrize(
    "declared",
    [
        Demographics("001190791515", "Nguyễn Thị Lan", date(1990, 5, 17), Gender.FEMALE),
        Demographics("001190791514", "Nguyen Thi Lan", date(1990, 5, 17), Gender.FEMALE),
        Demographics("001190791514", "Nguyễn Thị Lân", date(1990, 5, 17), Gender.FEMALE),
        Demographics("001190791514", "Nguyễn Thị Lan", date(1990, 5, 18), Gender.FEMALE),
        Demographics("001190791514", "Nguyễn Thị Lan", date(1990, 5, 17), Gender.MALE),
    ],
)
def test_demographics_mismatch(declared: Demographics) -> None:
    assert not demographics_match(declared, REGISTERED)
