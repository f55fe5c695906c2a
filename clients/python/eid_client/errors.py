"""EidError: a failed eid call, decoded from the Google rich error model.

The server answers every failure with a canonical status code plus, in the
``grpc-status-details-bin`` trailer, a serialized ``google.rpc.Status`` whose
details carry a ``google.rpc.ErrorInfo`` (the stable ``reason``) and, for invalid
input, a ``google.rpc.BadRequest`` (the offending fields).
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

# google.rpc ships without type information; the marker keeps this line valid
# whether or not a stub package or a mypy override is added later.
from google.rpc import (  # type: ignore[import-untyped, unused-ignore]
    error_details_pb2,
    status_pb2,
)
from grpc_status import rpc_status

from eid.errors.v1 import error_reason_pb2

STATUS_DETAILS_KEY = "grpc-status-details-bin"
ERROR_DOMAIN = "eid.v1"
ErrorReason = error_reason_pb2.ErrorReason


class EidError(Exception):
    """A call to eid failed.

    Branch on ``code`` for the broad class of failure and on ``reason`` (e.g.
    ``"REGISTRY_MISMATCH"``, or ``reason_enum``, the same as an
    ``eid.errors.v1.ErrorReason`` value) for the exact cause; ``message`` is for
    humans and may change. ``reason`` is ``None`` when the failure did not come
    from eid itself (e.g. ``UNAVAILABLE`` when the server cannot be reached).
    ``field_violations`` lists ``(field, description)`` for invalid input, and
    ``violation_reasons`` each field's own reason; ``retry_delay`` is the
    server's ``google.rpc.RetryInfo``: how long to wait before trying again.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str | None = None,
        domain: str | None = None,
        field_violations: Iterable[tuple[str, str]] = (),
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.domain = domain
        self.field_violations: list[tuple[str, str]] = list(field_violations)
        # field -> its own reason, e.g. "PHONE_NUMBER_INVALID" under INVALID_FIELDS.
        self.violation_reasons: dict[str, str] = {}
        self.metadata: dict[str, str] = dict(metadata or {})
        # How long to wait before retrying (``google.rpc.RetryInfo``), when
        # the server said: e.g. RESOURCE_EXHAUSTED PARTY_RATE_LIMITED.
        self.retry_delay: datetime.timedelta | None = None

    @property
    def reason_enum(self) -> error_reason_pb2.ErrorReason.ValueType:
        """``reason`` as an ErrorReason value; ``ERROR_REASON_UNSPECIFIED`` when
        there is none, or it comes from a newer server (branch on ``code``) or
        from another domain than eid's (a proxy's)."""
        if self.reason is None or self.domain not in (None, ERROR_DOMAIN):
            return ErrorReason.ERROR_REASON_UNSPECIFIED
        try:
            return ErrorReason.Value(self.reason)
        except ValueError:
            return ErrorReason.ERROR_REASON_UNSPECIFIED

    def __str__(self) -> str:
        head = self.code.name if self.reason is None else f"{self.code.name} {self.reason}"
        return f"{head}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"EidError(code={self.code.name}, reason={self.reason!r}, message={self.message!r}, "
            f"field_violations={self.field_violations!r})"
        )


def error_from_rpc_error(e: grpc.RpcError) -> EidError:
    """Convert a failed call (sync or ``grpc.aio``) into an :class:`EidError`."""
    code = _code_of(e)
    status = _rich_status(e)
    details = _details_of(e)
    message = details or (status.message if status is not None else "") or code.name
    error = EidError(code, message)
    if status is not None:
        _apply_details(error, status)
    return error


def _code_of(e: grpc.RpcError) -> grpc.StatusCode:
    # The bare grpc.RpcError base class has no code(); only real call errors do.
    code = getattr(e, "code", None)
    value = code() if callable(code) else None
    return value if isinstance(value, grpc.StatusCode) else grpc.StatusCode.UNKNOWN


def _details_of(e: grpc.RpcError) -> str | None:
    details = getattr(e, "details", None)
    value = details() if callable(details) else None
    return value if isinstance(value, str) else None


def _rich_status(e: grpc.RpcError) -> status_pb2.Status | None:
    # Sync errors are also grpc.Call objects, which grpc_status understands (the
    # stubs declare the two types incompatible, hence the detour through object).
    call: object = e
    if isinstance(call, grpc.Call):
        try:
            status: status_pb2.Status | None = rpc_status.from_call(call)
        except (ValueError, DecodeError):
            # The trailer contradicts the status line, or is garbled (a proxy's):
            # trust the status line only.
            return None
        return status
    # grpc.aio errors are not grpc.Call, so read the trailer ourselves.
    trailing = getattr(e, "trailing_metadata", None)
    metadata = trailing() if callable(trailing) else None
    return status_from_trailer(metadata or ())


def status_from_trailer(metadata: Iterable[tuple[str, Any]]) -> status_pb2.Status | None:
    """Parse the ``google.rpc.Status`` from trailing metadata, if present and valid."""
    for key, value in metadata:
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status()
            try:
                status.ParseFromString(value)
            except DecodeError:  # a garbled trailer must not hide the status code
                return None
            return status
    return None


def _apply_details(error: EidError, status: status_pb2.Status) -> None:
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        bad_request = error_details_pb2.BadRequest()
        retry = error_details_pb2.RetryInfo()
        if detail.Is(info.DESCRIPTOR) and detail.Unpack(info):
            if error.reason is None:  # the first ErrorInfo is authoritative
                error.reason = info.reason or None
                error.domain = info.domain or None
                error.metadata = dict(info.metadata)
        elif detail.Is(bad_request.DESCRIPTOR) and detail.Unpack(bad_request):
            error.field_violations.extend(
                (v.field, v.description) for v in bad_request.field_violations
            )
            error.violation_reasons.update(
                (v.field, v.reason) for v in bad_request.field_violations if v.reason
            )
        elif detail.Is(retry.DESCRIPTOR) and detail.Unpack(retry):
            with contextlib.suppress(OverflowError):  # no timedelta holds it: no advice
                error.retry_delay = retry.retry_delay.ToTimedelta()
