"""What a citizen may share with a relying party, and for how long."""

from __future__ import annotations

import enum
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from eid_service.domain.citizen import Demographics
from eid_service.domain.errors import InvalidInput


class ShareMode(enum.Enum):
    """What a share's QR carries: a signed reference, or the attributes themselves."""

    ONLINE = "online"
    OFFLINE = "offline"


class Attribute(enum.Enum):
    PERSONAL_ID = "personal_id"
    FULL_NAME = "full_name"
    BIRTH_DATE = "birth_date"
    GENDER = "gender"
    # Contact: the registered phone (E.164) and email (none when not registered).
    PHONE_NUMBER = "phone_number"
    EMAIL = "email"
    # A foreigner's nationality (ISO 3166-1 alpha-3); citizens have none to release.
    NATIONALITY = "nationality"
    # Linked documents (domain/linked_document.py), of one type each: released
    # as documents, never as a string value, and only in online shares. The
    # values are DocumentType's.
    DRIVING_LICENCE = "driving_licence"
    VEHICLE_REGISTRATION = "vehicle_registration"
    HEALTH_INSURANCE = "health_insurance"
    SOCIAL_INSURANCE = "social_insurance"
    TAX_CODE = "tax_code"


# The attributes that are linked documents.
DOCUMENT_ATTRIBUTES = frozenset(
    {
        Attribute.DRIVING_LICENCE,
        Attribute.VEHICLE_REGISTRATION,
        Attribute.HEALTH_INSURANCE,
        Attribute.SOCIAL_INSURANCE,
        Attribute.TAX_CODE,
    }
)


DEFAULT_SHARE_TTL = timedelta(minutes=5)
MIN_SHARE_TTL = timedelta(seconds=30)
# The longest lifetime the service allows unless configured lower.
MAX_SHARE_TTL = timedelta(hours=24)


DEFAULT_ISSUER = "eid.vn"
DEFAULT_CLOCK_SKEW = timedelta(seconds=60)


@dataclass(frozen=True)
class SharePolicy:
    """How shares are issued, as configured (EID_CREDENTIAL_ISSUER,
    EID_SHARE_MAX_TTL_SECONDS, EID_SHARE_CLOCK_SKEW_SECONDS)."""

    # The `iss` of offline credentials: short, because it is in every QR.
    issuer: str = DEFAULT_ISSUER
    max_ttl: timedelta = MAX_SHARE_TTL
    # How far a verifier's clock may be off; offline verifiers are told it.
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW

    def __post_init__(self) -> None:
        if not self.issuer or len(self.issuer) > 64 or not self.issuer.isprintable():
            raise ValueError("the credential issuer must be 1 to 64 printable characters")
        if not MIN_SHARE_TTL <= self.max_ttl <= MAX_SHARE_TTL:
            raise ValueError("the longest share lifetime must be between 30 s and 24 h")
        if not timedelta(0) <= self.clock_skew <= timedelta(minutes=5):
            raise ValueError("the clock skew must be between 0 and 300 s")


def check_share_ttl(
    ttl: timedelta | None, field: str = "ttl", *, cap: timedelta = MAX_SHARE_TTL
) -> timedelta:
    """The requested lifetime of a share (bounds inclusive); None means the
    default (or the cap, when the cap is shorter)."""
    if ttl is None:
        return min(DEFAULT_SHARE_TTL, cap)
    if not MIN_SHARE_TTL <= ttl <= cap:
        raise InvalidInput.of(
            field,
            "SHARE_TTL_OUT_OF_RANGE",
            f"the share lifetime must be between 30 seconds and {_spoken(cap)}",
        )
    return ttl


def _spoken(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("hours", 3600), ("minutes", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} seconds"


def check_share_attributes(
    attrs: Iterable[Attribute], field: str = "attributes"
) -> frozenset[Attribute]:
    """The distinct attributes to share; at least one."""
    chosen = frozenset(attrs)
    if not chosen:
        raise InvalidInput.of(
            field, "SHARE_ATTRIBUTES_EMPTY", "choose at least one attribute to share"
        )
    return chosen


def check_offline_attributes(
    attrs: frozenset[Attribute], mode: ShareMode, field: str = "attributes"
) -> None:
    """Linked documents are shared online only: online, a party sees them only
    under the matching documents.* scope, which the service checks at
    redemption; an offline credential is read without the service, by anyone
    holding the QR, and cannot be withdrawn."""
    if mode is ShareMode.OFFLINE and attrs & DOCUMENT_ATTRIBUTES:
        raise InvalidInput.of(
            field,
            "SHARE_DOCUMENTS_ONLINE_ONLY",
            "linked documents are shared in ONLINE mode only",
        )


def released_attributes(
    shared: Iterable[Attribute], party_scopes: Iterable[Attribute]
) -> frozenset[Attribute]:
    """A party sees only what the citizen shared and its own scopes allow."""
    return frozenset(shared) & frozenset(party_scopes)


def attribute_values(
    d: Demographics,
    attrs: Iterable[Attribute],
    *,
    phone: str | None = None,
    email: str | None = None,
    nationality: str | None = None,
) -> dict[Attribute, str]:
    """String values of the given attributes, in declaration order; one with
    no value (no email registered, a citizen's nationality) is left out:
    nothing is released for it."""
    wanted = frozenset(attrs)
    values = {
        Attribute.PERSONAL_ID: d.personal_id,
        Attribute.FULL_NAME: d.full_name,
        Attribute.BIRTH_DATE: d.birth_date.isoformat(),
        Attribute.GENDER: d.gender.value,
        Attribute.PHONE_NUMBER: phone,
        Attribute.EMAIL: email,
        Attribute.NATIONALITY: nationality,
    }
    return {a: v for a, v in values.items() if a in wanted and v is not None}


# Random bytes in a share id. An online share's id is the whole secret of an
# unsigned guess, so it gets 128 bits; an offline credential's id only names
# it (the signature protects it) and every byte makes its QR code larger.
_SHARE_ID_BYTES = {ShareMode.ONLINE: 16, ShareMode.OFFLINE: 10}
SHARE_ID_PREFIX = "shr_"


def new_share_id(mode: ShareMode = ShareMode.ONLINE) -> str:
    """An opaque, unique share id: "shr_" + 32 (online) or 20 (offline) hex digits."""
    return SHARE_ID_PREFIX + secrets.token_hex(_SHARE_ID_BYTES[mode])
