"""Rules a new account password must meet (checked before it is hashed)."""

from __future__ import annotations

import unicodedata

from eid_service.domain.errors import InvalidInput

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 128
# Digits-only passwords are accepted only from this length (e.g. a long PIN-style
# passphrase); shorter ones are dates and phone numbers, guessed first.
_MIN_DIGITS_ONLY_LENGTH = 16

# The top of public breach lists that also pass the length rule, plus the
# Vietnamese "mật khẩu" (password) variants. Compared case-insensitively.
_COMMON_PASSWORDS = frozenset(
    {
        "1234567890",
        "0123456789",
        "123456789a",
        "a123456789",
        "1234567890a",
        "1234567890q",
        "12345678910",
        "123456789abc",
        "abc1234567",
        "abcd123456",
        "abcdefghij",
        "password12",
        "password123",
        "password1234",
        "password@123",
        "p@ssw0rd123",
        "passw0rd123",
        "qwertyuiop",
        "qwertyuiop123",
        "qwerty1234",
        "qwerty12345",
        "qwerty123456",
        "1q2w3e4r5t",
        "1qaz2wsx3edc",
        "zaq12wsxcde",
        "asdfghjkl1",
        "iloveyou123",
        "admin12345",
        "admin@123",
        "administrator",
        "welcome123",
        "letmein123",
        "matkhau123",
        "matkhau1234",
        "matkhau@123",
        "vietnam123",
        "vietnam1234",
        "anhyeuem123",
        "emyeuanh123",
    }
)


def check_new_password(password: str, *, personal_id: str, field: str = "new_password") -> None:
    """Raise InvalidInput unless the password is long enough and not trivially guessable."""
    # Count what the user sees: a precomposed and a decomposed "ễ" are one character.
    text = unicodedata.normalize("NFC", password)
    if len(text) < MIN_PASSWORD_LENGTH:
        raise InvalidInput.of(
            field,
            "PASSWORD_TOO_SHORT",
            f"the password must have at least {MIN_PASSWORD_LENGTH} characters",
        )
    if len(text) > MAX_PASSWORD_LENGTH:
        raise InvalidInput.of(
            field,
            "PASSWORD_TOO_LONG",
            f"the password must have at most {MAX_PASSWORD_LENGTH} characters",
        )
    weakness = _weakness(text, personal_id)
    if weakness is not None:
        raise InvalidInput.of(field, "PASSWORD_TOO_WEAK", weakness)


def _weakness(text: str, personal_id: str) -> str | None:
    """Why the password is easy to guess, or None."""
    # The ID number is the username: a password containing it is guessed first.
    if personal_id and personal_id in text:
        return "the password must not contain the ID number"
    if len(set(text)) == 1:
        return "the password must not be one repeated character"
    if text.isdecimal() and len(text) < _MIN_DIGITS_ONLY_LENGTH:
        return f"a password of digits only must have at least {_MIN_DIGITS_ONLY_LENGTH} characters"
    if text.casefold() in _COMMON_PASSWORDS:
        return "the password is one of the most common passwords"
    return None
