"""Relying parties: third-party systems approved to verify citizens.

An operator onboards a party with the attributes it may read (its scopes),
the Verify modes it may use and its rate limits, and may later suspend,
resume or delete it. `new_party` applies the onboarding defaults and checks
every field; `RelyingParty`'s own defaults only keep older constructors
(tests, stored rows) working."""

from __future__ import annotations

import enum
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from eid_service.domain.errors import InvalidInput
from eid_service.domain.names import checked_name
from eid_service.domain.share import DOCUMENT_ATTRIBUTES, Attribute

PARTY_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,40}")

MAX_CONTACT_LENGTH = 200
DEFAULT_RATE_PER_MINUTE = 600
DEFAULT_CITIZEN_RATE_PER_MINUTE = 10
MAX_RATE_PER_MINUTE = 100_000
# How long a rotated-out API key keeps working: 0 stops it at once (a leak).
DEFAULT_KEY_OVERLAP = timedelta(hours=24)
MAX_KEY_OVERLAP = timedelta(days=30)
# A key made by a rotation this recently may be another operator's, already
# handed to the party: rotating it again is refused unless forced.
RECENT_KEY_ROTATION = timedelta(minutes=10)


class VerifyMode(enum.Enum):
    """The ways Verify can check a citizen; each party is allowed some."""

    PASSWORD = "password"  # noqa: S105 (a mode's name, not a secret)
    ONE_TIME_CODE = "one_time_code"
    APPROVAL = "approval"
    DEMOGRAPHIC = "demographic"
    QR_SHARE = "qr_share"
    # Allowed by the biometric_match scope (Grant.BIOMETRIC_MATCH), not as a
    # mode: one switch an operator turns, which no mode list can contradict.
    BIOMETRIC = "biometric"


# The modes an operator allows with --modes.
GRANTABLE_MODES = frozenset(VerifyMode) - {VerifyMode.BIOMETRIC}
# The modes in which the citizen takes part or proves possession (their
# password, a code sent to their phone, their approval, their share, their
# face or fingers): a party that verified the citizen so hears of the
# account's lock, unlock and deactivation. Not DEMOGRAPHIC: a claim of what
# is on the ID card or a form needs only the ID number, no citizen. Listed,
# not derived, so that a mode added later subscribes no one until chosen here.
CITIZEN_PRESENT_MODES = frozenset(
    {
        VerifyMode.PASSWORD,
        VerifyMode.ONE_TIME_CODE,
        VerifyMode.APPROVAL,
        VerifyMode.QR_SHARE,
        VerifyMode.BIOMETRIC,
    }
)
# Password verification is for trusted internal services: allowed explicitly only.
DEFAULT_MODES = GRANTABLE_MODES - {VerifyMode.PASSWORD}


class PartyStatus(enum.Enum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # every call refused (PARTY_SUSPENDED) until resumed


class Scope(enum.Enum):
    """Names an operator grants attributes by; each stands for a fixed set."""

    BASIC = "basic"
    ID_NUMBER = "id_number"
    # Never in the defaults: a party is granted the citizen's phone and email explicitly.
    CONTACT = "contact"
    # Linked documents, one scope per type; never in the defaults either.
    DOCUMENTS_DRIVING_LICENCE = "documents.driving_licence"
    DOCUMENTS_VEHICLE_REGISTRATION = "documents.vehicle_registration"
    DOCUMENTS_HEALTH_INSURANCE = "documents.health_insurance"
    DOCUMENTS_SOCIAL_INSURANCE = "documents.social_insurance"
    DOCUMENTS_TAX_CODE = "documents.tax_code"

    @property
    def attributes(self) -> frozenset[Attribute]:
        return _SCOPE_ATTRIBUTES[self]


_SCOPE_ATTRIBUTES = {
    # A foreigner's nationality is basic data too (citizens have none).
    Scope.BASIC: frozenset(
        {Attribute.FULL_NAME, Attribute.BIRTH_DATE, Attribute.GENDER, Attribute.NATIONALITY}
    ),
    Scope.ID_NUMBER: frozenset({Attribute.PERSONAL_ID}),
    Scope.CONTACT: frozenset({Attribute.PHONE_NUMBER, Attribute.EMAIL}),
    Scope.DOCUMENTS_DRIVING_LICENCE: frozenset({Attribute.DRIVING_LICENCE}),
    Scope.DOCUMENTS_VEHICLE_REGISTRATION: frozenset({Attribute.VEHICLE_REGISTRATION}),
    Scope.DOCUMENTS_HEALTH_INSURANCE: frozenset({Attribute.HEALTH_INSURANCE}),
    Scope.DOCUMENTS_SOCIAL_INSURANCE: frozenset({Attribute.SOCIAL_INSURANCE}),
    Scope.DOCUMENTS_TAX_CODE: frozenset({Attribute.TAX_CODE}),
}


class Grant(enum.Enum):
    """Scopes that release no attribute but allow a kind of answer; granted
    with --scopes like the others, never by default."""

    # Biometric Verify: whether templates the party captured are the citizen's.
    BIOMETRIC_MATCH = "biometric_match"


@dataclass(frozen=True)
class RelyingParty:
    id: str
    name: str
    # The attributes this party may ever read; every release is capped by them.
    scopes: frozenset[Attribute]
    # The Verify modes this party may use (a new party gets DEFAULT_MODES, see new_party).
    modes: frozenset[VerifyMode] = frozenset(VerifyMode)
    status: PartyStatus = PartyStatus.ACTIVE
    # The party's business contact (who to call about it), not a citizen's data.
    contact: str = ""
    # Verify calls a minute: of the whole party, and of the party about one citizen.
    rate_per_minute: int = DEFAULT_RATE_PER_MINUTE
    citizen_rate_per_minute: int = DEFAULT_CITIZEN_RATE_PER_MINUTE
    # SHA-256 of the DER client certificate its calls must come with (mutual
    # TLS), or None: the API key alone authenticates it.
    client_cert_sha256: bytes | None = None
    # Scopes beyond attributes (biometric Verify), granted with the scopes.
    grants: frozenset[Grant] = frozenset()


def new_party_id() -> str:
    return "rp_" + secrets.token_hex(8)


def new_party(
    name: str,
    scopes: frozenset[Attribute],
    *,
    contact: str = "",
    modes: frozenset[VerifyMode] = DEFAULT_MODES,
    rate_per_minute: int = DEFAULT_RATE_PER_MINUTE,
    citizen_rate_per_minute: int = DEFAULT_CITIZEN_RATE_PER_MINUTE,
    client_cert_sha256: bytes | None = None,
    grants: frozenset[Grant] = frozenset(),
) -> RelyingParty:
    """A party to onboard, ACTIVE, with a new id; InvalidInput names the bad field."""
    name = checked_name(name, "PARTY_NAME_INVALID")
    contact = contact.strip()
    if len(contact) > MAX_CONTACT_LENGTH or not contact.isprintable():
        raise InvalidInput.of(
            "contact",
            "PARTY_CONTACT_INVALID",
            f"a contact is at most {MAX_CONTACT_LENGTH} printable characters",
        )
    if not modes:
        raise InvalidInput.of("modes", "MODES_EMPTY", "allow the party at least one Verify mode")
    check_rate_limits(rate_per_minute, citizen_rate_per_minute)
    return RelyingParty(
        id=new_party_id(),
        name=name,
        scopes=scopes,
        modes=modes,
        contact=contact,
        rate_per_minute=rate_per_minute,
        citizen_rate_per_minute=citizen_rate_per_minute,
        client_cert_sha256=client_cert_sha256,
        grants=grants,
    )


def check_rate_limits(rate_per_minute: int, citizen_rate_per_minute: int) -> None:
    """A party's limits: 1 to MAX_RATE_PER_MINUTE calls a minute, and 1 to
    that a minute about one citizen."""
    if not 1 <= rate_per_minute <= MAX_RATE_PER_MINUTE:
        raise InvalidInput.of(
            "rate_per_minute",
            "RATE_LIMIT_INVALID",
            f"the party's rate limit is 1 to {MAX_RATE_PER_MINUTE} calls a minute",
        )
    if not 1 <= citizen_rate_per_minute <= rate_per_minute:
        raise InvalidInput.of(
            "citizen_rate_per_minute",
            "CITIZEN_RATE_LIMIT_INVALID",
            f"the per-citizen rate limit is 1 to the party's own ({rate_per_minute}) a minute",
        )


def _names(text: str) -> list[str]:
    return [part.strip().lower() for part in text.split(",") if part.strip()]


def parse_scopes(text: str, field: str = "scopes") -> frozenset[Attribute]:
    """Attributes from comma-separated scope names (basic, id_number, contact,
    documents.driving_licence, ...) and/or attribute names (full_name, ...):
    "basic,personal_id". Grant names
    (biometric_match) are known scopes too, releasing no attribute: see
    `parse_grants`."""
    names = _names(text)
    if not names:
        raise InvalidInput.of(field, "SCOPES_EMPTY", "name at least one scope or attribute")
    grants = [g.value for g in Grant]
    scopes = {s.value: s.attributes for s in Scope} | {g: frozenset[Attribute]() for g in grants}
    # A document is granted by its documents.* scope only, under one name.
    attributes = {a.value: frozenset({a}) for a in Attribute if a not in DOCUMENT_ATTRIBUTES}
    unknown = [n for n in names if n not in scopes and n not in attributes]
    if unknown:
        raise InvalidInput.of(
            field,
            "SCOPE_UNKNOWN",
            f"unknown scope {unknown[0]!r}: use scopes ({', '.join(scopes)})"
            f" or attributes ({', '.join(attributes)})",
        )
    return frozenset().union(*(scopes[n] if n in scopes else attributes[n] for n in names))


def parse_grants(text: str) -> frozenset[Grant]:
    """The grants among comma-separated scope names (the rest: `parse_scopes`)."""
    known = {g.value: g for g in Grant}
    return frozenset(known[n] for n in _names(text) if n in known)


def scope_names(
    attributes: frozenset[Attribute], grants: frozenset[Grant] = frozenset()
) -> list[str]:
    """The attributes as an operator grants them: whole scopes, then loose
    attributes, then grants."""
    whole = [s for s in Scope if s.attributes <= attributes]
    covered = frozenset().union(*(s.attributes for s in whole))
    loose = [a.value for a in Attribute if a in attributes and a not in covered]
    return [s.value for s in whole] + loose + [g.value for g in Grant if g in grants]


def parse_modes(text: str, field: str = "modes") -> frozenset[VerifyMode]:
    """Verify modes from comma-separated names: "qr_share,one_time_code"."""
    names = _names(text)
    if not names:
        raise InvalidInput.of(field, "MODES_EMPTY", "allow the party at least one Verify mode")
    if VerifyMode.BIOMETRIC.value in names:
        raise InvalidInput.of(
            field,
            "MODE_UNKNOWN",
            "biometric Verify is allowed by a scope, not a mode: --scopes ...,biometric_match",
        )
    known = {m.value: m for m in VerifyMode if m in GRANTABLE_MODES}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InvalidInput.of(
            field,
            "MODE_UNKNOWN",
            f"unknown Verify mode {unknown[0]!r}: use {', '.join(known)}",
        )
    return frozenset(known[n] for n in names)


def check_key_overlap(overlap: timedelta, field: str = "overlap") -> timedelta:
    """How long a rotated-out key keeps working: 0 (stops at once) to MAX_KEY_OVERLAP."""
    if not timedelta(0) <= overlap <= MAX_KEY_OVERLAP:
        raise InvalidInput.of(
            field,
            "KEY_OVERLAP_INVALID",
            f"the old key may keep working for 0 to {MAX_KEY_OVERLAP.days} days",
        )
    return overlap


def parse_party_id(raw: str, field: str) -> str:
    """A well-formed party id (whether such a party exists is another question)."""
    if PARTY_ID_PATTERN.fullmatch(raw) is None:
        raise InvalidInput.of(
            field, "PARTY_ID_INVALID", "a party id is 1 to 40 letters, digits, '_' or '-'"
        )
    return raw
