"""The packaged demo population registry is valid and covers the walkthrough cases."""

from __future__ import annotations

import csv
import io
import unicodedata
from datetime import date
from importlib import resources

import pytest

from eid_service.domain.citizen import (
    MIN_SELF_REGISTRATION_AGE,
    Gender,
    age_on,
    parse_birth_date,
    parse_full_name,
)
from eid_service.domain.personal_id import check_consistent, parse_personal_id, province_codes

TODAY = date(2026, 11, 23)


def load_rows() -> list[dict[str, str]]:
    text = resources.files("eid_service.data").joinpath("demo_citizens.csv").read_text("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


ROWS = load_rows()


def test_header_and_size() -> None:
    text = resources.files("eid_service.data").joinpath("demo_citizens.csv").read_text("utf-8")
    assert text.splitlines()[0] == "personal_id,full_name,birth_date,gender"
    assert len(ROWS) == 40


@pytest.mark.parametrize("row", ROWS, ids=[f"row{i + 1}" for i in range(len(ROWS))])
def test_row_is_valid_and_consistent(row: dict[str, str]) -> None:
    pid = parse_personal_id(row["personal_id"])
    assert pid.value == row["personal_id"]  # no stray whitespace
    assert pid.province_code in province_codes()
    birth = parse_birth_date(row["birth_date"], TODAY)
    gender = Gender(row["gender"])
    check_consistent(pid, birth, gender)
    # Names are stored exactly as the registry would display them.
    assert parse_full_name(row["full_name"]) == row["full_name"]
    assert unicodedata.is_normalized("NFC", row["full_name"])


def test_ids_are_unique() -> None:
    ids = [row["personal_id"] for row in ROWS]
    assert len(set(ids)) == len(ids)


def test_first_row_is_the_walkthrough_adult() -> None:
    first = ROWS[0]
    assert first["full_name"] == "Nguyễn Thị Lan"
    assert first["birth_date"] == "1990-05-17"
    assert first["gender"] == "female"
    assert first["personal_id"].startswith("001190")
    assert age_on(date.fromisoformat(first["birth_date"]), TODAY) >= 18


def ages() -> list[int]:
    return [age_on(date.fromisoformat(row["birth_date"]), TODAY) for row in ROWS]


def test_covers_minors_and_the_fourteenth_birthday() -> None:
    assert sum(age < MIN_SELF_REGISTRATION_AGE for age in ages()) >= 4
    assert any(row["birth_date"] == "2012-11-23" for row in ROWS)  # turns 14 on TODAY
    assert sum(age >= 18 for age in ages()) >= 20


def test_spread_of_birth_years_genders_and_provinces() -> None:
    years = [int(row["birth_date"][:4]) for row in ROWS]
    assert min(years) <= 1950 and max(years) >= 2020
    assert {row["gender"] for row in ROWS} == {"male", "female"}
    assert len({row["personal_id"][:3] for row in ROWS}) >= 20
    assert any(row["birth_date"].endswith("-02-29") for row in ROWS)
