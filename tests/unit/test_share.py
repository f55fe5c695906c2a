"""Share lifetimes, attribute choice and what a relying party may see."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, timedelta

import pytest

from eid_service.domain.citizen import Demographics, Gender
from eid_service.domain.errors import InvalidInput
from eid_service.domain.share import (
    DEFAULT_SHARE_TTL,
    DOCUMENT_ATTRIBUTES,
    MAX_SHARE_TTL,
    MIN_SHARE_TTL,
    Attribute,
    ShareMode,
    attribute_values,
    check_share_attributes,
    check_share_ttl,
    new_share_id,
    released_attributes,
)

A = Attribute
LAN = Demographics("001190791514", "Nguyễn Thị Lan", date(1990, 5, 17), Gender.FEMALE)


def test_ttl_bounds() -> None:
    assert timedelta(minutes=5) == DEFAULT_SHARE_TTL
    assert timedelta(seconds=30) == MIN_SHARE_TTL
    assert timedelta(hours=24) == MAX_SHARE_TTL


def test_missing_ttl_is_the_default() -> None:
    assert check_share_ttl(None) == DEFAULT_SHARE_TTL


@pytest.mark.parametrize(
    "ttl", [timedelta(seconds=30), timedelta(minutes=1), timedelta(hours=24), timedelta(hours=1)]
)
def test_ttl_in_range_is_kept(ttl: timedelta) -> None:
    assert check_share_ttl(ttl) == ttl


@pytest.mark.parametrize(
    "ttl",
    [
        timedelta(0),
        timedelta(seconds=-60),
        timedelta(seconds=29, microseconds=999_999),
        timedelta(hours=24, microseconds=1),
        timedelta(days=365),
    ],
)
def test_ttl_out_of_range(ttl: timedelta) -> None:
    with pytest.raises(InvalidInput) as info:
        check_share_ttl(ttl)
    assert info.value.reason == "SHARE_TTL_OUT_OF_RANGE"
    assert info.value.violations[0].field == "ttl"


def test_ttl_field_name_is_reported_as_given() -> None:
    with pytest.raises(InvalidInput) as info:
        check_share_ttl(timedelta(0), field="share.ttl")
    assert info.value.violations[0].field == "share.ttl"


@pytest.mark.parametrize("attrs", [[], (), set(), iter([])])
def test_no_attributes_is_refused(attrs: Iterable[Attribute]) -> None:
    with pytest.raises(InvalidInput) as info:
        check_share_attributes(attrs)
    assert info.value.reason == "SHARE_ATTRIBUTES_EMPTY"
    assert info.value.violations[0].field == "attributes"


def test_attributes_are_deduplicated() -> None:
    chosen = check_share_attributes(a for a in [A.FULL_NAME, A.FULL_NAME, A.GENDER])
    assert chosen == frozenset({A.FULL_NAME, A.GENDER})


@pytest.mark.parametrize(
    ("shared", "scopes", "released"),
    [
        ({A.FULL_NAME, A.BIRTH_DATE}, set(A), {A.FULL_NAME, A.BIRTH_DATE}),
        (set(A), {A.BIRTH_DATE}, {A.BIRTH_DATE}),
        ({A.PERSONAL_ID}, {A.FULL_NAME, A.GENDER}, set()),
        (set(), set(A), set()),
        ({A.GENDER, A.BIRTH_DATE}, {A.BIRTH_DATE, A.PERSONAL_ID}, {A.BIRTH_DATE}),
        # Contact: shared, but the party lacks the scope; the scope, but not shared.
        ({A.PHONE_NUMBER, A.EMAIL, A.FULL_NAME}, {A.FULL_NAME, A.GENDER}, {A.FULL_NAME}),
        ({A.FULL_NAME}, set(A), {A.FULL_NAME}),
        ({A.EMAIL, A.GENDER}, {A.PHONE_NUMBER, A.EMAIL}, {A.EMAIL}),
    ],
)
def test_released_is_what_both_allow(
    shared: set[Attribute], scopes: set[Attribute], released: set[Attribute]
) -> None:
    assert released_attributes(shared, scopes) == frozenset(released)


def test_attribute_values_of_everything() -> None:
    values = attribute_values(
        LAN, reversed(list(A)), phone="+84912345678", email="lan@example.vn", nationality="KOR"
    )
    assert values == {
        A.PERSONAL_ID: "001190791514",
        A.FULL_NAME: "Nguyễn Thị Lan",
        A.BIRTH_DATE: "1990-05-17",
        A.GENDER: "female",
        A.PHONE_NUMBER: "+84912345678",
        A.EMAIL: "lan@example.vn",
        A.NATIONALITY: "KOR",
    }
    # Declaration order, whatever the input order; documents have no string value.
    assert list(values) == [a for a in A if a not in DOCUMENT_ATTRIBUTES]


def test_an_attribute_without_a_value_is_not_released() -> None:
    # No email registered (and no phone given): asked for, but nothing to release.
    assert attribute_values(LAN, [A.EMAIL, A.PHONE_NUMBER, A.GENDER]) == {A.GENDER: "female"}
    assert attribute_values(LAN, [A.EMAIL], phone="+84912345678") == {}
    assert attribute_values(LAN, [A.PHONE_NUMBER], phone="+84912345678") == {
        A.PHONE_NUMBER: "+84912345678"
    }


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ([A.BIRTH_DATE], {A.BIRTH_DATE: "1990-05-17"}),
        ([A.GENDER, A.GENDER], {A.GENDER: "female"}),
        ([], {}),
    ],
)
def test_attribute_values_are_exactly_the_requested(
    attrs: list[Attribute], expected: dict[Attribute, str]
) -> None:
    assert attribute_values(LAN, attrs) == expected


def test_new_share_id_is_opaque_and_unique() -> None:
    online = {new_share_id() for _ in range(1000)}
    offline = {new_share_id(ShareMode.OFFLINE) for _ in range(1000)}
    assert len(online) == len(offline) == 1000
    # 128 random bits behind an online reference; 80 name an offline credential.
    assert all(re.fullmatch(r"shr_[0-9a-f]{32}", i) for i in online)
    assert all(re.fullmatch(r"shr_[0-9a-f]{20}", i) for i in offline)
