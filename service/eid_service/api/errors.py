"""The one place where domain errors become gRPC statuses (Google error model)."""

from __future__ import annotations

from decimal import Decimal

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from eid_service.domain.errors import (
    Aborted,
    AlreadyExists,
    DeadlineExceeded,
    DomainError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    TooLarge,
    TooManyAttempts,
    Unauthenticated,
    Unavailable,
)

ERROR_DOMAIN = "eid.v1"
STATUS_DETAILS_KEY = "grpc-status-details-bin"

_CODES: list[tuple[type[DomainError], grpc.StatusCode]] = [
    (InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (PreconditionFailed, grpc.StatusCode.FAILED_PRECONDITION),
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (TooManyAttempts, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (TooLarge, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (DeadlineExceeded, grpc.StatusCode.DEADLINE_EXCEEDED),
    (Unavailable, grpc.StatusCode.UNAVAILABLE),
    (Aborted, grpc.StatusCode.ABORTED),
]


def status_code_for(error: DomainError) -> grpc.StatusCode:
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.FAILED_PRECONDITION


def _pack(
    message: error_details_pb2.ErrorInfo
    | error_details_pb2.BadRequest
    | error_details_pb2.RetryInfo,
) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def rich_status(
    code: grpc.StatusCode,
    reason: str,
    message: str,
    *,
    details: list[any_pb2.Any] | None = None,
    metadata: dict[str, str] | None = None,
) -> status_pb2.Status:
    info = error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=metadata or {})
    numeric: int = code.value[0]
    return status_pb2.Status(code=numeric, message=message, details=[_pack(info), *(details or [])])


def to_status(error: DomainError) -> tuple[grpc.StatusCode, status_pb2.Status]:
    code = status_code_for(error)
    details: list[any_pb2.Any] = []
    if isinstance(error, InvalidInput) and error.violations:
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=v.description, reason=v.reason
                        )
                        for v in error.violations
                    ]
                )
            )
        )
    retry_after = error.metadata.get("retry_after_seconds")
    if retry_after is not None:
        # Clients and gateways honour the standard detail, not our metadata key.
        retry = error_details_pb2.RetryInfo()
        # Whole seconds, or decimal ones ("0.250") where the wait is that precise.
        retry.retry_delay.FromNanoseconds(int(Decimal(retry_after) * 1_000_000_000))
        details.append(_pack(retry))
    return code, rich_status(
        code, error.reason, error.message, details=details, metadata=error.metadata
    )
