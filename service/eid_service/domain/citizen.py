"""Citizens as the population registry knows them: name, birth date, gender.

Parsing helpers turn raw request strings into checked values; comparison helpers
decide whether declared data match the registry.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date

from eid_service.domain.errors import InvalidInput, PreconditionFailed

MIN_SELF_REGISTRATION_AGE = 14

_MAX_NAME_LENGTH = 100
# Punctuation that occurs in real names ("Ê-đê", "O'Neil", "Jr."); everything
# else must be a letter or a combining mark of any script.
_NAME_PUNCTUATION = frozenset(" -'.")
_EARLIEST_BIRTH_DATE = date(1900, 1, 1)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class Gender(enum.Enum):
    MALE = "male"
    FEMALE = "female"


@dataclass(frozen=True)
class Demographics:
    """The level-1 identity attributes of one citizen."""

    # Kept out of repr so a logged object never carries them.
    personal_id: str = field(repr=False)
    full_name: str = field(repr=False)
    birth_date: date = field(repr=False)
    gender: Gender


def _collapse_whitespace(text: str) -> str:
    # str.split() with no argument splits on any Unicode whitespace (incl. NBSP).
    return " ".join(text.split())


def normalize_name(name: str) -> str:
    """The comparison key of a name: NFC, case-folded, single-spaced.

    Diacritics are significant ("Nguyễn" is not "Nguyen"); letter case, spacing
    and the Unicode composition form (NFC vs NFD keyboards) are not.
    """
    # Case folding can decompose some characters, so normalize again after it.
    folded = unicodedata.normalize("NFC", name).casefold()
    return _collapse_whitespace(unicodedata.normalize("NFC", folded))


def parse_full_name(raw: str, field: str = "full_name") -> str:
    """A display-ready full name (NFC, single-spaced) or InvalidInput."""
    # Cheap bound before normalizing: NFD text is at most a few code points per letter.
    if len(raw) > 8 * _MAX_NAME_LENGTH:
        raise _bad_name(field, "the full name is longer than 100 characters")
    name = _collapse_whitespace(unicodedata.normalize("NFC", raw))
    if not name:
        raise _bad_name(field, "the full name is empty")
    if len(name) > _MAX_NAME_LENGTH:
        raise _bad_name(field, "the full name is longer than 100 characters")
    if not all(ch in _NAME_PUNCTUATION or unicodedata.category(ch)[0] in "LM" for ch in name):
        raise _bad_name(
            field,
            "the full name may contain only letters, spaces, hyphens, apostrophes and periods",
        )
    if not any(unicodedata.category(ch)[0] == "L" for ch in name):
        raise _bad_name(field, "the full name contains no letters")
    return name


def _bad_name(field: str, description: str) -> InvalidInput:
    return InvalidInput.of(field, "FULL_NAME_INVALID", description)


def parse_birth_date(raw: str, today: date, field: str = "birth_date") -> date:
    """A birth date written exactly as YYYY-MM-DD, between 1900-01-01 and today."""
    text = raw.strip()
    # date.fromisoformat alone would also take "19900517" and week dates.
    if not _ISO_DATE.fullmatch(text):
        raise _bad_birth_date(field, "the birth date must be written as YYYY-MM-DD")
    try:
        value = date.fromisoformat(text)
    except ValueError:
        raise _bad_birth_date(field, "the birth date is not a valid calendar date") from None
    if value > today:
        raise _bad_birth_date(field, "the birth date is in the future")
    if value < _EARLIEST_BIRTH_DATE:
        raise _bad_birth_date(field, "the birth date is before 1900-01-01")
    return value


def _bad_birth_date(field: str, description: str) -> InvalidInput:
    return InvalidInput.of(field, "BIRTH_DATE_INVALID", description)


def age_on(birth_date: date, today: date) -> int:
    """Completed years of age on `today`.

    Someone born on 29 February gains a year on 1 March in common years.
    """
    if today < birth_date:
        raise ValueError("today is before the birth date")
    before_birthday = (today.month, today.day) < (birth_date.month, birth_date.day)
    return today.year - birth_date.year - int(before_birthday)


def require_self_registration_age(birth_date: date, today: date) -> None:
    """Citizens under 14 cannot hold a self-registered account."""
    if age_on(birth_date, today) < MIN_SELF_REGISTRATION_AGE:
        raise PreconditionFailed(
            reason="AGE_BELOW_MINIMUM",
            message=(
                f"citizens under {MIN_SELF_REGISTRATION_AGE} cannot register themselves; "
                "a parent or guardian must register them as a dependant of their own account"
            ),
            metadata={"minimum_age": str(MIN_SELF_REGISTRATION_AGE)},
        )


def demographics_match(declared: Demographics, registered: Demographics) -> bool:
    """Whether declared data identify the registered citizen (names compared normalized)."""
    return (
        declared.personal_id == registered.personal_id
        and normalize_name(declared.full_name) == normalize_name(registered.full_name)
        and declared.birth_date == registered.birth_date
        and declared.gender == registered.gender
    )
