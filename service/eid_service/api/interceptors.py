"""Cross-cutting behaviour of every RPC: error mapping, the access log
(access_log.py), the per-call limits (call_limits.py) and, when on,
telemetry (telemetry/rpc.py).

Logs carry the method, status code, reason and duration, never a request
field (but the client's request id), so no ID number, name, code, password
or token reaches them."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import grpc
from grpc import aio

from eid_service.api.access_log import AccessLog
from eid_service.api.call_limits import CallLimits, Refused
from eid_service.api.errors import STATUS_DETAILS_KEY, rich_status, to_status
from eid_service.domain.errors import DomainError, InvalidInput, TooLarge
from eid_service.limits import Limits
from eid_service.logs import traceback_fields
from eid_service.telemetry import calls

if TYPE_CHECKING:
    from eid_service.telemetry.rpc import RpcObserver

log = logging.getLogger("eid.rpc")

Behaviour = Callable[[Any, aio.ServicerContext[Any, Any]], Awaitable[Any]]


if TYPE_CHECKING:
    _Interceptor = aio.ServerInterceptor[Any, Any]
else:  # not subscriptable at run time
    _Interceptor = aio.ServerInterceptor


def _undecodable_request() -> InvalidInput:
    return InvalidInput(
        reason="REQUEST_UNDECODABLE",
        message="the request bytes are not a valid message of this method "
        "(malformed protobuf or a string field that is not UTF-8)",
    )


UNDECODABLE = Refused(_undecodable_request)


def _tolerant(
    deserialize: Callable[[bytes], Any] | None, max_bytes: int
) -> Callable[[bytes], Any] | None:
    """A deserializer that returns a Refused request instead of raising, so
    the bad request gets a precise status from the handler rather than
    gRPC's UNKNOWN; and refuses one over the method's size without parsing it."""
    if deserialize is None:
        return None
    too_large = Refused(
        lambda: TooLarge(
            reason="REQUEST_TOO_LARGE",
            message=f"this method takes requests of at most {max_bytes} bytes",
            metadata={"max_bytes": str(max_bytes)},
        )
    )

    def parse(data: bytes) -> Any:
        if len(data) > max_bytes:
            return too_large
        try:
            return deserialize(data)
        except Exception:
            return UNDECODABLE

    return parse


class ErrorMappingInterceptor(_Interceptor):
    """Turns DomainError into its status with ErrorInfo/BadRequest details, and
    an unexpected exception into INTERNAL with an incident id (details logged).

    `classify` lets the composition root name infrastructure failures that are
    really domain-level conditions (e.g. a busy store is UNAVAILABLE). With an
    `observer` (telemetry on) each call runs inside its span; without one,
    tracing costs nothing here: the choice is made once per method. `limits`
    (one per server: it counts the calls at work) bounds each call."""

    def __init__(
        self,
        classify: Callable[[BaseException], DomainError | None] = lambda _: None,
        *,
        observer: RpcObserver | None = None,
        limits: CallLimits | None = None,
    ) -> None:
        self._classify = classify
        self._observer = observer
        self._limits = limits or CallLimits(Limits())
        # Wrapped once per method, not per call: this runs on every RPC.
        self._wrapped: dict[tuple[str, int], grpc.RpcMethodHandler[Any, Any]] = {}

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = handler_call_details.method
        key = (method, id(handler.unary_unary))
        wrapped = self._wrapped.get(key)
        if wrapped is None:
            wrapped = self._wrapped[key] = self._wrap(method, handler)
        return wrapped

    def _wrap(
        self, method: str, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> grpc.RpcMethodHandler[Any, Any]:
        # grpc-stubs types the sync signature; under grpc.aio it is a coroutine function.
        behaviour = self._limits.capped(cast(Behaviour, handler.unary_unary))
        access = AccessLog(method, handler.request_deserializer)
        # Observed, the observer has made the call's record; else the access
        # log makes one if it will write a line.
        begin = access.begin if self._observer is None else calls.current

        async def mapped(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            started = time.perf_counter()
            call = begin()
            try:
                if request.__class__ is Refused:
                    raise request.make()
                response = await behaviour(request, context)
            except aio.AbortError:
                raise
            except Exception as raised:
                error = raised if isinstance(raised, DomainError) else self._classify(raised)
                if error is None:
                    incident = _log_internal(method, raised)
                    if call is not None:
                        access.finish(
                            call,
                            grpc.StatusCode.INTERNAL,
                            "INTERNAL",
                            started,
                            request,
                            context,
                            incident=incident,
                        )
                    await _abort_internal(incident, context)
                    raise  # abort raises; this line is for the type checker
                code, status = to_status(error)
                if call is not None:
                    access.finish(call, code, error.reason, started, request, context)
                await context.abort(
                    code,
                    status.message,
                    trailing_metadata=((STATUS_DETAILS_KEY, status.SerializeToString()),),
                )
            else:
                if call is not None:
                    access.finish(call, grpc.StatusCode.OK, "", started, request, context)
                return response

        serve = mapped if self._observer is None else self._observer.wrap(method, mapped)
        return self._limits.handler(
            serve,
            _tolerant(handler.request_deserializer, self._limits.limits.message_limit(method)),
            handler.response_serializer,
        )


def _log_internal(method: str, error: BaseException) -> str:
    """Logs an unexpected failure; returns its incident id."""
    incident = secrets.token_hex(6)
    # The exception's message may quote data: its type, place and traceback
    # frames only.
    log.error(
        "rpc failed method=%s incident=%s error=%s at=%s",
        method,
        incident,
        type(error).__name__,
        _where(error),
        extra={
            "fields": {"rpc": method, "incident": incident, "error": type(error).__name__},
            **traceback_fields(error),
        },
    )
    return incident


async def _abort_internal(incident: str, context: aio.ServicerContext[Any, Any]) -> None:
    code = grpc.StatusCode.INTERNAL
    status = rich_status(code, "INTERNAL", "internal error", metadata={"incident": incident})
    await context.abort(
        code,
        f"internal error (incident {incident})",
        trailing_metadata=((STATUS_DETAILS_KEY, status.SerializeToString()),),
    )


def _where(error: BaseException) -> str:
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return "?"
    return f"{tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}"
