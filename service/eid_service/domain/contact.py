"""Contact points for activation messages: Vietnamese mobile numbers and email."""

from __future__ import annotations

import re

from eid_service.domain.errors import InvalidInput

# Separators people type inside phone numbers; removed before checking.
_PHONE_SEPARATORS = re.compile(r"[\s.\-]")
# National significant number of a mobile: 9 digits after the trunk 0, on the
# 03/05/07/08/09 ranges.
_MOBILE_NSN = re.compile(r"[35789][0-9]{8}")

_MAX_EMAIL_LENGTH = 254
_MAX_LOCAL_PART_LENGTH = 64
_MAX_LABEL_LENGTH = 63
# RFC 5322 dot-atom characters; quoted local parts are deliberately not supported.
_LOCAL_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")
_DOMAIN_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")


def parse_vn_mobile(raw: str, field: str = "phone_number") -> str:
    """A Vietnamese mobile number in E.164 form ("+84912345678"), or InvalidInput."""
    text = _PHONE_SEPARATORS.sub("", raw)
    if text.startswith("+84"):
        nsn = text[3:]
    elif text.startswith("84") and len(text) == 11:
        nsn = text[2:]
    elif text.startswith("0") and len(text) == 10:
        nsn = text[1:]
    else:
        nsn = ""
    if not _MOBILE_NSN.fullmatch(nsn):
        raise InvalidInput.of(
            field,
            "PHONE_NUMBER_INVALID",
            "the phone number is not a Vietnamese mobile number (10 digits starting "
            "03, 05, 07, 08 or 09, or +84 followed by the last 9)",
        )
    return "+84" + nsn


def mask_phone(e164: str) -> str:
    """A phone number safe to show or log: only the last 3 digits remain."""
    digits = "".join(ch for ch in e164 if ch.isdigit())
    if len(digits) < 7:  # too short to keep any digits without revealing most of it
        return "***"
    prefix = "+84 " if e164.startswith("+84") else ""
    return f"{prefix}*** *** {digits[-3:]}"


def parse_email(raw: str, field: str = "email") -> str | None:
    """An email address with a lower-cased domain; None when not given."""
    text = raw.strip()
    if not text:
        return None
    local, at, domain = text.rpartition("@")
    if not at or not _valid_local_part(local) or not _valid_domain(domain):
        raise InvalidInput.of(field, "EMAIL_INVALID", "the email address is not valid")
    if len(text) > _MAX_EMAIL_LENGTH:
        raise InvalidInput.of(field, "EMAIL_INVALID", "the email address is too long")
    return f"{local}@{domain.lower()}"


def _valid_local_part(local: str) -> bool:
    # A single "@" only: anything left of the last "@" must not contain another one.
    if not local or len(local) > _MAX_LOCAL_PART_LENGTH:
        return False
    return all(_LOCAL_ATOM.fullmatch(atom) for atom in local.split("."))


def _valid_domain(domain: str) -> bool:
    labels = domain.split(".")
    if len(labels) < 2 or labels[-1].isdigit():  # need a dot; an all-numeric TLD is an IP
        return False
    return all(
        len(label) <= _MAX_LABEL_LENGTH and _DOMAIN_LABEL.fullmatch(label) for label in labels
    )


def mask_email(email: str) -> str:
    """An address safe to show: the first character of the local part and the domain."""
    local, at, domain = email.rpartition("@")
    if not at or not local:
        return "***"
    return f"{local[0]}***@{domain}"
