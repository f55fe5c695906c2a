"""Cross-cutting behaviour of every RPC: error mapping and access logging.

Logs carry the method, status code, reason and duration, never a request
field, so no ID number, name, code, password or token reaches them."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import grpc
from grpc import aio

from eid_service.api.errors import STATUS_DETAILS_KEY, rich_status, to_status
from eid_service.domain.errors import DomainError, InvalidInput

log = logging.getLogger("eid.rpc")

Behaviour = Callable[[Any, aio.ServicerContext[Any, Any]], Awaitable[Any]]


if TYPE_CHECKING:
    _Interceptor = aio.ServerInterceptor[Any, Any]
else:  # not subscriptable at run time
    _Interceptor = aio.ServerInterceptor


class _Undecodable:
    """Stands in for a request whose bytes are not a valid message."""


UNDECODABLE = _Undecodable()


def _undecodable_request() -> InvalidInput:
    return InvalidInput(
        reason="REQUEST_UNDECODABLE",
        message="the request bytes are not a valid message of this method "
        "(malformed protobuf or a string field that is not UTF-8)",
    )


def _tolerant(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """A deserializer that returns UNDECODABLE instead of raising, so the bad
    request gets a precise status from the handler rather than gRPC's UNKNOWN."""
    if deserialize is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception:
            return UNDECODABLE

    return parse


class ErrorMappingInterceptor(_Interceptor):
    """Turns DomainError into its status with ErrorInfo/BadRequest details, and
    an unexpected exception into INTERNAL with an incident id (details logged).

    `classify` lets the composition root name infrastructure failures that are
    really domain-level conditions (e.g. a busy store is UNAVAILABLE)."""

    def __init__(
        self, classify: Callable[[BaseException], DomainError | None] = lambda _: None
    ) -> None:
        self._classify = classify
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
        behaviour = cast(Behaviour, handler.unary_unary)

        async def mapped(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            started = time.perf_counter()
            try:
                if request is UNDECODABLE:
                    raise _undecodable_request()
                response = await behaviour(request, context)
            except aio.AbortError:
                raise
            except Exception as raised:
                error = raised if isinstance(raised, DomainError) else self._classify(raised)
                if error is None:
                    await _abort_internal(method, raised, context)
                    raise  # abort raises; this line is for the type checker
                code, status = to_status(error)
                _log(method, code, error.reason, started)
                await context.abort(
                    code,
                    status.message,
                    trailing_metadata=((STATUS_DETAILS_KEY, status.SerializeToString()),),
                )
            else:
                _log(method, grpc.StatusCode.OK, "", started)
                return response

        return grpc.unary_unary_rpc_method_handler(
            mapped,
            request_deserializer=_tolerant(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )


async def _abort_internal(
    method: str, error: BaseException, context: aio.ServicerContext[Any, Any]
) -> None:
    incident = secrets.token_hex(6)
    # The exception's message may quote data; log its type and place only.
    log.error(
        "rpc failed method=%s incident=%s error=%s at=%s",
        method,
        incident,
        type(error).__name__,
        _where(error),
    )
    code = grpc.StatusCode.INTERNAL
    status = rich_status(code, "INTERNAL", "internal error", metadata={"incident": incident})
    await context.abort(
        code,
        f"internal error (incident {incident})",
        trailing_metadata=((STATUS_DETAILS_KEY, status.SerializeToString()),),
    )


def _log(method: str, code: grpc.StatusCode, reason: str, started: float) -> None:
    if log.isEnabledFor(logging.INFO):
        elapsed_ms = (time.perf_counter() - started) * 1000
        log.info("rpc method=%s code=%s reason=%s ms=%.1f", method, code.name, reason, elapsed_ms)


def _where(error: BaseException) -> str:
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return "?"
    return f"{tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}"
