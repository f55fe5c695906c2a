"""The names an operator gives relying parties and registration officers.

Shown in tables and audit entries, so one line of printable text; at most
the width of their columns (200 characters)."""

from __future__ import annotations

from eid_service.domain.errors import InvalidInput

MAX_NAME_LENGTH = 200


def checked_name(name: str, reason: str) -> str:
    """`name` stripped; InvalidInput on the field "name" (with `reason`) unless
    it is 1 to MAX_NAME_LENGTH printable characters."""
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME_LENGTH or not name.isprintable():
        raise InvalidInput.of(
            "name", reason, f"a name is 1 to {MAX_NAME_LENGTH} printable characters"
        )
    return name
