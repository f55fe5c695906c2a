"""Vietnamese mobile numbers and email addresses: parsing and masking."""

from __future__ import annotations

import pytest

from eid_service.domain.contact import mask_email, mask_phone, parse_email, parse_vn_mobile
from eid_service.domain.errors import InvalidInput


def fullwidth(ascii_digits: str) -> str:
    """The same digits as full-width forms (what some phone keyboards type)."""
    return ascii_digits.translate({ord(d): 0xFF10 + int(d) for d in "0123456789"})


@pytest.mark.parametrize(
    "raw",
    [
        "0912345678",
        " 0912345678 ",
        "091 234 5678",
        "0912.345.678",
        "0912-345-678",
        "0912 345-678",
        "+84912345678",
        "+84 912 345 678",
        "+84-912-345-678",
        "+84.912.345.678",
        "84912345678",
        "84 912 345 678",
    ],
)
def test_accepted_formats_give_e164(raw: str) -> None:
    assert parse_vn_mobile(raw) == "+84912345678"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0312345678", "+84312345678"),
        ("0512345678", "+84512345678"),
        ("0712345678", "+84712345678"),
        ("0812345678", "+84812345678"),
        ("0987654321", "+84987654321"),
        ("+84387654321", "+84387654321"),
    ],
)
def test_every_mobile_range_is_accepted(raw: str, expected: str) -> None:
    assert parse_vn_mobile(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "091234567",  # 9 digits
        "09123456789",  # 11 digits
        "0212345678",  # landline / non-mobile ranges
        "0412345678",
        "0612345678",
        "0112345678",
        "0012345678",
        "912345678",  # no trunk 0
        "+84212345678",
        "+840912345678",  # trunk 0 after the country code
        "+8491234567",
        "+849123456789",
        "849123456789",
        "840912345678",
        "+1 912 345 678",
        "+4491234567",
        "0084912345678",
        "0912345678x",
        "(091) 234 5678",
        "0912/345/678",
        fullwidth("0912345678"),  # full-width digits
        "+84+912345678",
    ],
)
def test_rejected_numbers(raw: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_vn_mobile(raw)
    exc = info.value
    assert exc.reason == "PHONE_NUMBER_INVALID"
    assert [(v.field, v.reason) for v in exc.violations] == [
        ("phone_number", "PHONE_NUMBER_INVALID")
    ]
    if raw.strip():
        assert raw.strip() not in exc.message


def test_phone_field_name_is_reported_as_given() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_vn_mobile("1", field="contact.phone")
    assert info.value.violations[0].field == "contact.phone"


@pytest.mark.parametrize(
    ("e164", "masked"),
    [
        ("+84912345678", "+84 *** *** 678"),
        ("+84387654321", "+84 *** *** 321"),
        ("+14155550123", "*** *** 123"),
        ("+8412", "***"),
        ("", "***"),
    ],
)
def test_mask_phone_keeps_only_the_last_three_digits(e164: str, masked: str) -> None:
    assert mask_phone(e164) == masked


def test_mask_phone_hides_the_rest() -> None:
    masked = mask_phone("+84912345678")
    assert "912" not in masked and "345" not in masked


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("lan.nguyen@example.com", "lan.nguyen@example.com"),
        ("Lan.Nguyen@Example.COM", "Lan.Nguyen@example.com"),  # only the domain is folded
        ("  lan@mail.gov.vn ", "lan@mail.gov.vn"),
        ("a+tag@sub.example.vn", "a+tag@sub.example.vn"),
        ("o'neil@example.com", "o'neil@example.com"),
        ("x_y-z@my-domain.io", "x_y-z@my-domain.io"),
        ("x@xn--hni-8ta.vn", "x@xn--hni-8ta.vn"),
        ("1@2.co", "1@2.co"),
    ],
)
def test_parse_email_accepts(raw: str, expected: str) -> None:
    assert parse_email(raw) == expected


@pytest.mark.parametrize("raw", ["", " ", "\t\n"])
def test_missing_email_is_none(raw: str) -> None:
    assert parse_email(raw) is None


def test_email_length_limits_are_inclusive() -> None:
    domain = ".".join(["b" * 63, "c" * 63, "d" * 58]) + ".vn"
    longest = "a" * 64 + "@" + domain
    assert len(longest) == 254
    assert parse_email(longest) == longest


@pytest.mark.parametrize(
    "raw",
    [
        "plain",
        "@example.com",
        "lan@",
        "lan@example",
        "lan@@example.com",
        "lan@ex@ample.com",
        "la n@example.com",
        ".lan@example.com",
        "lan.@example.com",
        "la..n@example.com",
        "lan@-example.com",
        "lan@example-.com",
        "lan@exa_mple.com",
        "lan@example..com",
        "lan@.example.com",
        "lan@example.com.",
        "lan@127.0.0.1",
        "lân@example.com",
        "lan@hà-nội.vn",
        '"lan"@example.com',
        "lan@[127.0.0.1]",
        "a" * 65 + "@example.com",
        "a@" + "b" * 64 + ".com",
        "a" * 64 + "@" + ".".join(["b" * 63, "c" * 63, "d" * 59]) + ".vn",  # 255 total
    ],
)
def test_parse_email_rejects(raw: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_email(raw)
    exc = info.value
    assert exc.reason == "EMAIL_INVALID"
    assert [(v.field, v.reason) for v in exc.violations] == [("email", "EMAIL_INVALID")]
    assert raw not in exc.message


def test_email_field_name_is_reported_as_given() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_email("nope", field="contact.email")
    assert info.value.violations[0].field == "contact.email"


@pytest.mark.parametrize(
    ("email", "masked"),
    [
        ("nguyen.lan@example.com", "n***@example.com"),
        ("x@y.vn", "x***@y.vn"),
        ("not-an-address", "***"),
        ("@example.com", "***"),
    ],
)
def test_mask_email(email: str, masked: str) -> None:
    assert mask_email(email) == masked
