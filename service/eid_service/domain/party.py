"""Relying parties: third-party systems approved to verify citizens."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from eid_service.domain.share import Attribute


@dataclass(frozen=True)
class RelyingParty:
    id: str
    name: str
    # The attributes this party may ever read; every release is capped by them.
    scopes: frozenset[Attribute]


def new_party_id() -> str:
    return "rp_" + secrets.token_hex(8)
