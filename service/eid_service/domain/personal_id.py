"""The 12-digit personal identification number (CCCD), Circular 07/2016/TT-BCA.

Layout: 3 digits province of birth registration, 1 digit century and gender,
2 digits year of birth, 6 random digits.

Foreigners living in Viet Nam hold a 12-digit identification number too,
assigned by the registry; ours begin with 900 (no province code does: they run
001-096) and encode neither birth date nor gender.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from importlib import resources
from types import MappingProxyType

from eid_service.domain.citizen import Gender
from eid_service.domain.errors import InvalidInput

_PATTERN = re.compile(r"[0-9]{12}")
# Century digit pairs start in 1900 (0/1) and go up by 100 years per pair (… 2300: 8/9).
_FIRST_CENTURY = 1900
_LAST_YEAR = 2399
_MAX_SERIAL = 999_999
FOREIGNER_ID_PREFIX = "900"
_MAX_FOREIGNER_SERIAL = 999_999_999


@functools.cache
def province_codes() -> Mapping[str, str]:
    """Province code -> province name, from the packaged province_codes.csv."""
    text = resources.files("eid_service.data").joinpath("province_codes.csv").read_text("utf-8")
    rows = csv.DictReader(io.StringIO(text))
    return MappingProxyType({row["code"]: row["name"] for row in rows})


@dataclass(frozen=True, repr=False)
class PersonalId:
    """A well-formed ID number. repr/str are redacted so it never reaches a log."""

    value: str

    def __post_init__(self) -> None:
        if not _PATTERN.fullmatch(self.value):
            raise ValueError("a PersonalId must be 12 ASCII digits")

    @property
    def is_foreigner(self) -> bool:
        return self.value.startswith(FOREIGNER_ID_PREFIX)

    @property
    def province_code(self) -> str:
        return self.value[:3]

    @property
    def gender(self) -> Gender:
        return Gender.MALE if int(self.value[3]) % 2 == 0 else Gender.FEMALE

    @property
    def birth_year(self) -> int:
        century = _FIRST_CENTURY + (int(self.value[3]) // 2) * 100
        return century + int(self.value[4:6])

    def __repr__(self) -> str:
        return "PersonalId(<redacted>)"

    def __str__(self) -> str:
        return "<redacted personal id>"


def parse_personal_id(raw: str, field: str = "personal_id") -> PersonalId:
    """A checked ID number, or InvalidInput (the message never echoes the number)."""
    text = raw.strip()
    if not _PATTERN.fullmatch(text):
        raise InvalidInput.of(field, "PERSONAL_ID_MALFORMED", "the ID number is not 12 digits")
    if text[:3] not in province_codes() and not text.startswith(FOREIGNER_ID_PREFIX):
        raise InvalidInput.of(
            field,
            "PERSONAL_ID_UNKNOWN_PROVINCE",
            "the ID number does not start with a known province code",
        )
    return PersonalId(text)


def check_consistent(
    pid: PersonalId, birth_date: date, gender: Gender, field: str = "personal_id"
) -> None:
    """The ID number's century/gender digit and year must agree with the person
    (a foreigner's assigned number says nothing about either)."""
    if pid.is_foreigner:
        return
    if pid.gender is not gender or pid.birth_year != birth_date.year:
        raise InvalidInput.of(
            field,
            "PERSONAL_ID_INCONSISTENT",
            "the ID number does not agree with the birth date and gender",
        )


def make_personal_id(
    province_code: str, birth_date: date, gender: Gender, serial: int
) -> PersonalId:
    """Build a valid number (for demo data and tests); ValueError on impossible input."""
    if province_code not in province_codes():
        raise ValueError("unknown province code")
    if not _FIRST_CENTURY <= birth_date.year <= _LAST_YEAR:
        raise ValueError("ID numbers encode birth years 1900 to 2399 only")
    if not 0 <= serial <= _MAX_SERIAL:
        raise ValueError("the serial must be between 0 and 999999")
    century_index, year_in_century = divmod(birth_date.year - _FIRST_CENTURY, 100)
    digit = century_index * 2 + (0 if gender is Gender.MALE else 1)
    return PersonalId(f"{province_code}{digit}{year_in_century:02d}{serial:06d}")


def make_foreigner_id(serial: int) -> PersonalId:
    """A foreigner's identification number (for generated data and tests)."""
    if not 0 <= serial <= _MAX_FOREIGNER_SERIAL:
        raise ValueError("the serial must be between 0 and 999999999")
    return PersonalId(f"{FOREIGNER_ID_PREFIX}{serial:09d}")
