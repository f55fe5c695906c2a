"""What a foreigner declares at registration instead of an ID number: the
passport's number, nationality, date and place of issue; parsed from request
strings, and compared with what the population registry recorded."""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from eid_service.domain.citizen import normalize_name
from eid_service.domain.errors import InvalidInput
from eid_service.domain.registry_person import (
    NATIONALITY_PATTERN,
    PASSPORT_NUMBER_PATTERN,
    Passport,
)

# Citizens of Viet Nam register with the ID number, never a passport.
VIETNAM = "VNM"
_MAX_PLACE_LENGTH = 100
_PLACE_PUNCTUATION = frozenset(" -'.,/()")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_passport_number(raw: str, field: str = "passport.number") -> str:
    """The document number, upper case (ICAO 9303: 6 to 9 letters and digits)."""
    number = raw.strip().upper()
    if not PASSPORT_NUMBER_PATTERN.fullmatch(number):
        raise InvalidInput.of(
            field,
            "PASSPORT_NUMBER_INVALID",
            "the passport number must be 6 to 9 letters and digits",
        )
    return number


def parse_nationality(raw: str, field: str = "passport.nationality") -> str:
    """An ISO 3166-1 alpha-3 code, upper case; not Viet Nam's."""
    code = raw.strip().upper()
    if not NATIONALITY_PATTERN.fullmatch(code):
        raise InvalidInput.of(
            field,
            "NATIONALITY_INVALID",
            "the nationality must be an ISO 3166-1 alpha-3 code such as KOR or USA",
        )
    if code == VIETNAM:
        raise InvalidInput.of(
            field,
            "NATIONALITY_INVALID",
            "a citizen of Viet Nam registers with the ID number, not a passport",
        )
    return code


def parse_issue_date(
    raw: str, today: date, born: date | None, field: str = "passport.issue_date"
) -> date:
    """The date of issue: YYYY-MM-DD, not in the future, not before the birth
    date (when that is known)."""
    text = raw.strip()
    try:
        if not _ISO_DATE.fullmatch(text):
            raise ValueError
        issued = date.fromisoformat(text)
    except ValueError:
        raise _bad_date(field, "the passport issue date must be a YYYY-MM-DD date") from None
    if issued > today:
        raise _bad_date(field, "the passport issue date is in the future")
    if born is not None and issued < born:
        raise _bad_date(field, "the passport issue date is before the birth date")
    return issued


def _bad_date(field: str, description: str) -> InvalidInput:
    return InvalidInput.of(field, "PASSPORT_ISSUE_DATE_INVALID", description)


def parse_issue_place(raw: str, field: str = "passport.issue_place") -> str:
    """The place of issue as printed (NFC, single-spaced), 1 to 100 characters
    of letters, digits and the punctuation of authority names."""
    if len(raw) > 8 * _MAX_PLACE_LENGTH:
        raise _bad_place(field, "the place of issue is longer than 100 characters")
    place = " ".join(unicodedata.normalize("NFC", raw).split())
    if not place:
        raise _bad_place(field, "the place of issue is empty")
    if len(place) > _MAX_PLACE_LENGTH:
        raise _bad_place(field, "the place of issue is longer than 100 characters")
    allowed = all(ch in _PLACE_PUNCTUATION or unicodedata.category(ch)[0] in "LMN" for ch in place)
    if not allowed or not any(unicodedata.category(ch)[0] == "L" for ch in place):
        raise _bad_place(
            field, "the place of issue may contain only letters, digits, spaces and - ' . , / ( )"
        )
    return place


def _bad_place(field: str, description: str) -> InvalidInput:
    return InvalidInput.of(field, "PASSPORT_ISSUE_PLACE_INVALID", description)


def passports_match(declared: Passport, registered: Passport) -> bool:
    """Whether a declared passport is the one the registry recorded (places
    compared as names are: case, spacing and composition form aside)."""
    return (
        declared.number == registered.number
        and declared.nationality == registered.nationality
        and declared.issue_date == registered.issue_date
        and normalize_name(declared.issue_place) == normalize_name(registered.issue_place)
    )
