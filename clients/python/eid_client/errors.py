"""EidError: a failed eid call, decoded from the Google rich error model.

The server answers every failure with a canonical status code plus, in the
``grpc-status-details-bin`` trailer, a serialized ``google.rpc.Status`` whose
details carry a ``google.rpc.ErrorInfo`` (the stable ``reason``) and, for invalid
input, a ``google.rpc.BadRequest`` (the offending fields).

How a trailer is read, alike in the Python, Node and Java SDKs:

- Its details count only when its ``code`` is the call's status code (gRPC's
  rule, as grpc-java applies it); one that contradicts the status line
  describes another failure (a proxy's) and is ignored whole.
- The message is the status line's (``grpc-message``), the trailer's only when
  the line has none: a proxy may rewrite or truncate ``grpc-message``, and a
  message that differs does not make the details any less the call's.
- The first ``ErrorInfo`` with a ``reason`` gives reason, domain and metadata;
  every other one is ignored, also one without a reason (malformed: AIP-193
  requires one) before it. ``BadRequest`` violations add up; the last readable
  ``RetryInfo`` gives the delay.
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
    status = _rich_status(e, code)
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


def _rich_status(e: grpc.RpcError, code: grpc.StatusCode) -> status_pb2.Status | None:
    # Read from the trailer for sync and grpc.aio errors alike: grpc_status's
    # from_call also refuses a trailer whose message differs from the line's.
    trailing = getattr(e, "trailing_metadata", None)
    metadata = trailing() if callable(trailing) else None
    status = status_from_trailer(metadata or ())
    if status is None or status.code != code.value[0]:
        return None  # none, garbled, or another failure's: the status line alone
    return status


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
            # The first ErrorInfo with a reason is eid's; a proxy may append its own.
            if error.reason is None and info.reason:
                error.reason = info.reason
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
