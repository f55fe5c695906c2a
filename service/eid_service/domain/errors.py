"""Domain errors: a stable machine-readable reason plus a kind of failure.

The API edge maps each kind to one gRPC status code (see api/errors.py) and
carries `reason` as google.rpc.ErrorInfo. Messages must never contain an ID
number, name, phone, code, password or token in clear.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldViolation:
    """One invalid request field, reported as a google.rpc.BadRequest entry."""

    field: str
    reason: str
    description: str


@dataclass
class DomainError(Exception):
    """Base of every expected failure. `reason` is UPPER_SNAKE_CASE and stable."""

    reason: str
    message: str
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)


@dataclass
class InvalidInput(DomainError):
    """The request itself is malformed (INVALID_ARGUMENT)."""

    violations: list[FieldViolation] = field(default_factory=list)

    @classmethod
    def of(cls, field_name: str, reason: str, description: str) -> InvalidInput:
        return cls(
            reason=reason,
            message=description,
            violations=[FieldViolation(field_name, reason, description)],
        )


class NotFound(DomainError):
    """A named thing does not exist (NOT_FOUND)."""


class AlreadyExists(DomainError):
    """The thing to create exists already (ALREADY_EXISTS)."""


class PreconditionFailed(DomainError):
    """Well-formed, but the system is not in a state to do it (FAILED_PRECONDITION)."""


class Unauthenticated(DomainError):
    """The caller's credentials are missing or wrong (UNAUTHENTICATED)."""


class PermissionDenied(DomainError):
    """The caller is known but not allowed to do this (PERMISSION_DENIED)."""


class TooManyAttempts(DomainError):
    """A throttle or attempt limit was reached (RESOURCE_EXHAUSTED)."""


class TooLarge(DomainError):
    """The request is larger than the method takes (RESOURCE_EXHAUSTED, as gRPC
    itself answers a message over the transport's limit)."""


class DeadlineExceeded(DomainError):
    """The call ran out of the time the server gives it (DEADLINE_EXCEEDED)."""


class Unavailable(DomainError):
    """Cannot be done right now, but a retry may succeed (UNAVAILABLE)."""


class Aborted(DomainError):
    """Lost a race with a concurrent call; retrying gets the real answer (ABORTED)."""


class Conflict(Aborted):
    """A concurrent transaction took the same unique thing first (ABORTED)."""

    def __init__(self, message: str = "a concurrent request changed the same data; retry") -> None:
        super().__init__(reason="CONCURRENT_REQUEST", message=message)
