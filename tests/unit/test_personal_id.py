"""Personal ID numbers: format, province, century/gender digit, consistency, redaction."""

from __future__ import annotations

from datetime import date

import pytest

from eid_service.domain.citizen import Gender
from eid_service.domain.errors import InvalidInput
from eid_service.domain.personal_id import (
    PersonalId,
    check_consistent,
    make_foreigner_id,
    make_personal_id,
    parse_personal_id,
    province_codes,
)


def fullwidth(ascii_digits: str) -> str:
    """The same digits as full-width forms (what some phone keyboards type)."""
    return ascii_digits.translate({ord(d): 0xFF10 + int(d) for d in "0123456789"})


LAN = "001190791514"  # Hà Nội, female, born 1990


def assert_invalid(exc: InvalidInput, field: str, reason: str, raw: str) -> None:
    assert exc.reason == reason
    assert [(v.field, v.reason) for v in exc.violations] == [(field, reason)]
    if raw.strip():
        assert raw.strip() not in exc.message
        assert raw.strip() not in exc.violations[0].description


def test_parse_returns_the_digits() -> None:
    assert parse_personal_id(LAN).value == LAN


@pytest.mark.parametrize("raw", [f" {LAN}", f"{LAN} ", f"\t{LAN}\n", f"  {LAN}  "])
def test_parse_strips_surrounding_whitespace(raw: str) -> None:
    assert parse_personal_id(raw).value == LAN


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "00119079151",  # 11 digits
        "0011907915140",  # 13 digits
        "00119079151a",
        "001 190791514",
        "001-190-791-514",
        "+01190791514",
        "-01190791514",
        fullwidth("001190791514"),  # full-width digits are not ASCII digits
        "٠٠١١٩٠٧٩١٥١٤",  # Arabic-Indic digits
        "001190791514\x00",
    ],
)
def test_malformed_numbers_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_personal_id(raw)
    assert_invalid(info.value, "personal_id", "PERSONAL_ID_MALFORMED", raw)


@pytest.mark.parametrize("raw", ["000190791514", "003190791514", "099190791514", "999190791514"])
def test_unknown_province_is_rejected(raw: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_personal_id(raw)
    assert_invalid(info.value, "personal_id", "PERSONAL_ID_UNKNOWN_PROVINCE", raw)


def test_field_name_is_reported_as_given() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_personal_id("12", field="password.personal_id")
    assert info.value.violations[0].field == "password.personal_id"


@pytest.mark.parametrize(
    ("digit", "year", "gender"),
    [
        ("0", 1900, Gender.MALE),
        ("1", 1999, Gender.FEMALE),
        ("2", 2000, Gender.MALE),
        ("3", 2099, Gender.FEMALE),
        ("4", 2100, Gender.MALE),
        ("5", 2150, Gender.FEMALE),
        ("6", 2200, Gender.MALE),
        ("7", 2277, Gender.FEMALE),
        ("8", 2300, Gender.MALE),
        ("9", 2399, Gender.FEMALE),
    ],
)
def test_century_gender_digit_round_trips(digit: str, year: int, gender: Gender) -> None:
    pid = make_personal_id("079", date(year, 6, 1), gender, 123)
    assert pid.value == f"079{digit}{year % 100:02d}000123"
    parsed = parse_personal_id(pid.value)
    assert parsed.province_code == "079"
    assert parsed.gender is gender
    assert parsed.birth_year == year


def test_properties_decode_the_number() -> None:
    pid = parse_personal_id(LAN)
    assert (pid.province_code, pid.gender, pid.birth_year) == ("001", Gender.FEMALE, 1990)


@pytest.mark.parametrize(
    ("birth_date", "gender"),
    [(date(1990, 1, 1), Gender.FEMALE), (date(1990, 12, 31), Gender.FEMALE)],
)
def test_consistent_number_passes(birth_date: date, gender: Gender) -> None:
    check_consistent(parse_personal_id(LAN), birth_date, gender)


@pytest.mark.parametrize(
    ("birth_date", "gender"),
    [
        (date(1990, 5, 17), Gender.MALE),  # wrong gender
        (date(1991, 5, 17), Gender.FEMALE),  # wrong year
        (date(2090, 5, 17), Gender.FEMALE),  # same two digits, wrong century
        (date(1890, 5, 17), Gender.FEMALE),
        (date(2090, 5, 17), Gender.MALE),
    ],
)
def test_inconsistent_number_is_rejected(birth_date: date, gender: Gender) -> None:
    with pytest.raises(InvalidInput) as info:
        check_consistent(parse_personal_id(LAN), birth_date, gender)
    assert_invalid(info.value, "personal_id", "PERSONAL_ID_INCONSISTENT", LAN)


def test_inconsistency_uses_the_given_field() -> None:
    with pytest.raises(InvalidInput) as info:
        check_consistent(parse_personal_id(LAN), date(1990, 5, 17), Gender.MALE, field="id")
    assert info.value.violations[0].field == "id"


@pytest.mark.parametrize(("serial", "suffix"), [(0, "000000"), (42, "000042"), (999_999, "999999")])
def test_make_zero_pads_the_serial(serial: int, suffix: str) -> None:
    pid = make_personal_id("001", date(1990, 5, 17), Gender.FEMALE, serial)
    assert pid.value == "001190" + suffix


@pytest.mark.parametrize(
    ("province", "birth_date", "serial"),
    [
        ("003", date(1990, 1, 1), 1),  # unknown province
        ("1", date(1990, 1, 1), 1),
        ("001", date(1899, 12, 31), 1),  # before the scheme's first century
        ("001", date(2400, 1, 1), 1),
        ("001", date(1990, 1, 1), -1),
        ("001", date(1990, 1, 1), 1_000_000),
    ],
)
def test_make_rejects_impossible_input(province: str, birth_date: date, serial: int) -> None:
    with pytest.raises(ValueError, match=r"."):
        make_personal_id(province, birth_date, Gender.MALE, serial)


@pytest.mark.parametrize("value", ["", "00119079151", "00119079151a", fullwidth("001190791514")])
def test_personal_id_refuses_malformed_values(value: str) -> None:
    with pytest.raises(ValueError, match="12 ASCII digits"):
        PersonalId(value)


def test_number_never_appears_in_repr_or_str() -> None:
    pid = parse_personal_id(LAN)
    for text in (repr(pid), str(pid), f"{pid}", f"{pid!r}", repr([pid]), repr({"k": pid})):
        assert LAN not in text
        assert "redacted" in text


def test_equality_and_hash_follow_the_value() -> None:
    assert parse_personal_id(LAN) == PersonalId(LAN)
    assert len({parse_personal_id(LAN), PersonalId(LAN)}) == 1


def test_province_codes_are_the_packaged_63() -> None:
    codes = province_codes()
    assert len(codes) == 63
    assert codes["001"] == "Hà Nội"
    assert codes["079"] == "Hồ Chí Minh"
    assert all(len(code) == 3 and code.isdigit() for code in codes)


def test_province_codes_are_loaded_once_and_read_only() -> None:
    codes = province_codes()
    assert province_codes() is codes
    with pytest.raises(TypeError):
        codes["000"] = "Nowhere"  # type: ignore[index]


def test_a_foreigners_assigned_number_parses_and_says_nothing_of_birth() -> None:
    foreigner = make_foreigner_id(4_217)
    assert foreigner.value == "900000004217"
    parsed = parse_personal_id(foreigner.value)
    assert parsed.is_foreigner and not parse_personal_id(LAN).is_foreigner
    # Any birth date and gender agree with it: the registry assigned it.
    check_consistent(parsed, date(1961, 12, 31), Gender.MALE)
    check_consistent(parsed, date(2004, 1, 1), Gender.FEMALE)
    with pytest.raises(ValueError, match="serial"):
        make_foreigner_id(1_000_000_000)
