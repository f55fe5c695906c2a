"""Relying parties: third-party systems approved to verify citizens."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from eid_service.domain.errors import InvalidInput
from eid_service.domain.share import Attribute

_PARTY_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")


@dataclass(frozen=True)
class RelyingParty:
    id: str
    name: str
    # The attributes this party may ever read; every release is capped by them.
    scopes: frozenset[Attribute]


def new_party_id() -> str:
    return "rp_" + secrets.token_hex(8)


def parse_party_id(raw: str, field: str) -> str:
    """A well-formed party id (whether such a party exists is another question)."""
    if _PARTY_ID.fullmatch(raw) is None:
        raise InvalidInput.of(
            field, "PARTY_ID_INVALID", "a party id is 1 to 40 letters, digits, '_' or '-'"
        )
    return raw
