"""Registration officers: people at a police counter who check a citizen in
person and may then unlock the citizen's account. An operator creates them
(`eid-server create-officer`); each call they make is audited with their id."""

from __future__ import annotations

import secrets
from dataclasses import dataclass


@dataclass(frozen=True)
class Officer:
    id: str
    name: str


def new_officer_id() -> str:
    return "off_" + secrets.token_hex(8)
