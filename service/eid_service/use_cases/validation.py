"""Collects every invalid field of a request into one InvalidInput."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from eid_service.domain.errors import FieldViolation, InvalidInput

T = TypeVar("T")


class Violations:
    """`v.check(parse, ...)` returns the parsed value or None and remembers the
    violation, so a client learns about all bad fields in one round trip."""

    def __init__(self) -> None:
        self._found: list[FieldViolation] = []

    def check(self, parse: Callable[[], T]) -> T | None:
        try:
            return parse()
        except InvalidInput as e:
            self._found.extend(e.violations)
            return None

    def add(self, field: str, reason: str, description: str) -> None:
        self._found.append(FieldViolation(field, reason, description))

    def raise_if_any(self) -> None:
        if not self._found:
            return
        first = self._found[0]
        reason = first.reason if len(self._found) == 1 else "INVALID_FIELDS"
        message = "; ".join(v.description for v in self._found)
        raise InvalidInput(reason=reason, message=message, violations=list(self._found))
