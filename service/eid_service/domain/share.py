"""What a citizen may share with a relying party, and for how long."""

from __future__ import annotations

import enum
import secrets
from collections.abc import Iterable
from datetime import timedelta

from eid_service.domain.citizen import Demographics
from eid_service.domain.errors import InvalidInput


class Attribute(enum.Enum):
    PERSONAL_ID = "personal_id"
    FULL_NAME = "full_name"
    BIRTH_DATE = "birth_date"
    GENDER = "gender"


DEFAULT_SHARE_TTL = timedelta(minutes=5)
MIN_SHARE_TTL = timedelta(seconds=30)
MAX_SHARE_TTL = timedelta(hours=24)


def check_share_ttl(ttl: timedelta | None, field: str = "ttl") -> timedelta:
    """The requested lifetime of a share (bounds inclusive); None means the default."""
    if ttl is None:
        return DEFAULT_SHARE_TTL
    if not MIN_SHARE_TTL <= ttl <= MAX_SHARE_TTL:
        raise InvalidInput.of(
            field,
            "SHARE_TTL_OUT_OF_RANGE",
            "the share lifetime must be between 30 seconds and 24 hours",
        )
    return ttl


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


def released_attributes(
    shared: Iterable[Attribute], party_scopes: Iterable[Attribute]
) -> frozenset[Attribute]:
    """A party sees only what the citizen shared and its own scopes allow."""
    return frozenset(shared) & frozenset(party_scopes)


def attribute_values(d: Demographics, attrs: Iterable[Attribute]) -> dict[Attribute, str]:
    """String values of exactly the given attributes, in declaration order."""
    wanted = frozenset(attrs)
    values = {
        Attribute.PERSONAL_ID: d.personal_id,
        Attribute.FULL_NAME: d.full_name,
        Attribute.BIRTH_DATE: d.birth_date.isoformat(),
        Attribute.GENDER: d.gender.value,
    }
    return {a: v for a, v in values.items() if a in wanted}


def new_share_id() -> str:
    """An opaque, unguessable share id ("shr_" + 26 hex characters)."""
    return "shr_" + secrets.token_hex(13)
