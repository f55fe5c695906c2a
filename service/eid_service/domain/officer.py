"""Registration officers: people at a police counter who check a citizen in
person. An operator creates them (`eid-server officer create`) with roles:
`registration` (register level-2 accounts and upgrade level-1 ones, with the
biometrics captured at the counter) and `unlock` (unlock a locked account).
Each call they make is audited with their id."""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass

from eid_service.domain.errors import InvalidInput, PermissionDenied
from eid_service.domain.names import checked_name


class OfficerRole(enum.Enum):
    # Level 2: enrols a citizen's biometrics, so it is the stronger trust.
    REGISTRATION = "registration"
    UNLOCK = "unlock"


# A new officer's roles unless the operator names others. Officers created
# before roles existed were given UNLOCK alone (migration 0016): all they did.
DEFAULT_ROLES = frozenset(OfficerRole)


@dataclass(frozen=True)
class Officer:
    id: str
    name: str
    roles: frozenset[OfficerRole] = DEFAULT_ROLES


def new_officer_id() -> str:
    return "off_" + secrets.token_hex(8)


def new_officer(name: str, roles: frozenset[OfficerRole] = DEFAULT_ROLES) -> Officer:
    """An officer to create, with a new id; InvalidInput names a bad name
    (checked as a party's: the operator's tables and the audit show it)."""
    return Officer(new_officer_id(), checked_name(name, "OFFICER_NAME_INVALID"), roles)


def parse_roles(text: str, field: str = "roles") -> frozenset[OfficerRole]:
    """Roles from comma-separated names: "registration,unlock"."""
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    if not names:
        raise InvalidInput.of(field, "ROLES_EMPTY", "give the officer at least one role")
    known = {r.value: r for r in OfficerRole}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InvalidInput.of(
            field, "ROLE_UNKNOWN", f"unknown role {unknown[0]!r}: use {', '.join(known)}"
        )
    return frozenset(known[n] for n in names)


def require_role(officer: Officer, role: OfficerRole) -> None:
    """PermissionDenied unless the officer holds `role`."""
    if role not in officer.roles:
        raise officer_role_missing(role)


def officer_role_missing(role: OfficerRole) -> PermissionDenied:
    return PermissionDenied(
        reason="OFFICER_ROLE_MISSING",
        message=f"this officer does not hold the {role.value} role; an operator grants it"
        " with `eid-server officer set-roles`",
        metadata={"role": role.value},
    )
