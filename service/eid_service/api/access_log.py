"""The access log: one line per RPC (logger eid.rpc, INFO) with its method,
status code, ErrorInfo reason, duration, request id, trace id and relying
party; with EID_LOG_FORMAT=json these are the line's keys.

Never a request field other than the client-chosen request id, so no ID
number, name, code, password or token reaches it; and that id as sent only
in the shapes the SDKs make (a UUID, as AIP-155 advises, or a ULID). A
client may choose any 1 to 64 letters, digits and . _ : -, which fits an ID
number, a phone or a token: such an id is logged as "(not a UUID)", and
the trace id is there to follow the call."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any

import grpc
from grpc import aio

from eid_service.api import metadata
from eid_service.domain.errors import InvalidInput
from eid_service.domain.request_id import parse_request_id
from eid_service.telemetry import calls

log = logging.getLogger("eid.rpc")


def _has_request_id(deserializer: Callable[[bytes], Any] | None) -> bool:
    message = getattr(deserializer, "__self__", None)  # FromString is bound to the class
    descriptor = getattr(message, "DESCRIPTOR", None)
    return descriptor is not None and "request_id" in descriptor.fields_by_name


_SHOWN_REQUEST_ID = re.compile(
    r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"  # UUID
    r"|[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}"  # ULID (Crockford base32)
)
NOT_SHOWN = "(not a UUID)"


def _request_id(request: Any) -> str:
    try:
        given = parse_request_id(request.request_id) or ""
    except (InvalidInput, AttributeError, TypeError):  # malformed: not worth a line
        return ""
    return given if not given or _SHOWN_REQUEST_ID.fullmatch(given) else NOT_SHOWN


class AccessLog:
    """One method's lines; made once per method, when it is first called."""

    __slots__ = ("_method", "_request_ids")

    def __init__(self, method: str, deserializer: Callable[[bytes], Any] | None) -> None:
        self._method = method
        self._request_ids = _has_request_id(deserializer)

    @staticmethod
    def begin() -> calls.Call | None:
        """The call's record, if a line will be written (no work otherwise)."""
        return calls.begin() if log.isEnabledFor(logging.INFO) else None

    def finish(
        self,
        call: calls.Call,
        code: grpc.StatusCode,
        reason: str,
        started: float,
        request: Any,
        context: aio.ServicerContext[Any, Any],
        **more: str,
    ) -> None:
        """Records the outcome on the call (its telemetry reads it) and logs it."""
        call.code, call.reason = code, reason
        if not log.isEnabledFor(logging.INFO):
            return
        fields: dict[str, object] = {
            "rpc": self._method,
            "code": code.name,
            "reason": reason,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            "request_id": _request_id(request) if self._request_ids else "",
            "trace_id": call.trace_id or metadata.trace_id(context) or "",
            "party_id": call.party_id,
            **more,
        }
        log.info(
            "rpc method=%s code=%s reason=%s ms=%.1f party=%s request_id=%s trace_id=%s%s",
            self._method,
            code.name,
            reason,
            fields["duration_ms"],
            call.party_id or "-",
            fields["request_id"] or "-",
            fields["trace_id"] or "-",
            "".join(f" {k}={v}" for k, v in more.items()),
            extra={"fields": fields},
        )
