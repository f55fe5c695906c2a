"""The per-call limits of limits.py around every unary RPC: the request must
arrive soon after the call's headers (a half-open stream is ended), no call
runs past the deadline cap, and a worker works on so many calls at once.

Each unary method is served as a client-streaming one (the bytes on the wire
are the same), so the request is read here, under a timeout, instead of by
gRPC before any application code runs. A refusal reaches the error mapping as
a `Refused` request, which raises its error there: refusals are answered,
logged and traced like every other error."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from grpc import aio

from eid_service.domain.errors import DeadlineExceeded, DomainError, InvalidInput, Unavailable
from eid_service.limits import Limits

Context = aio.ServicerContext[Any, Any]
Behaviour = Callable[[Any, Context], Awaitable[Any]]
# A well-behaved client retries a refused call after this (RetryInfo).
BUSY_RETRY_SECONDS = "1"


class Refused:
    """Stands in for a request refused before its method runs."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[], DomainError]) -> None:
        self.make = make


def _no_request() -> InvalidInput:
    return InvalidInput(
        reason="REQUEST_UNDECODABLE",
        message="the call ended without a request message",
    )


def _server_busy() -> Unavailable:
    return Unavailable(
        reason="SERVER_BUSY",
        message="this server is at its limit of calls at once; retry shortly",
        metadata={"retry_after_seconds": BUSY_RETRY_SECONDS},
    )


# What a read returns once the client has half-closed (missing from grpc-stubs).
_EOF: object = aio.EOF  # type: ignore[attr-defined]
NO_REQUEST = Refused(_no_request)
BUSY = Refused(_server_busy)


class _CappedContext:
    """The call's context whose time_remaining() ends at the cap, so a method
    that budgets a wait on it (Verify waiting on an approval) still answers."""

    __slots__ = ("_context", "_deadline")

    def __init__(self, context: Context, deadline: float) -> None:
        self._context = context
        self._deadline = deadline

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    def time_remaining(self) -> float:
        left = max(0.0, self._deadline - time.monotonic())
        own = self._context.time_remaining()
        return left if own is None else min(own, left)


class _Reads:
    """The calls waiting for their request, swept every quarter of the
    timeout instead of each timed on its own (a timer per call cost a tenth
    of a cheap call's throughput): a stalled read is cancelled between 1 and
    1.25 timeouts after it began."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        # In the order they began (a dict keeps it), so a sweep stops at the first young one.
        self._began: dict[asyncio.Task[Any], float] = {}
        self.expired: set[asyncio.Task[Any]] = set()
        self._sweeping = False

    def begin(self, task: asyncio.Task[Any]) -> None:
        self._began[task] = time.monotonic()
        if not self._sweeping:
            self._sweeping = True
            asyncio.get_running_loop().call_later(self._timeout / 4, self._sweep)

    def end(self, task: asyncio.Task[Any]) -> None:
        self._began.pop(task, None)

    def _sweep(self) -> None:
        too_old = time.monotonic() - self._timeout
        stale = []
        for task, began in self._began.items():
            if began > too_old:
                break
            stale.append(task)
        for task in stale:
            del self._began[task]
            self.expired.add(task)
            task.cancel()
        self._sweeping = bool(self._began)
        if self._sweeping:
            asyncio.get_running_loop().call_later(self._timeout / 4, self._sweep)


class CallLimits:
    """One per server (worker process): it counts the calls being worked on."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.active = 0
        self._reads = _Reads(limits.request_timeout_seconds)
        waited = limits.request_timeout_seconds
        self._not_received = Refused(
            lambda: DeadlineExceeded(
                reason="REQUEST_NOT_RECEIVED",
                message=f"the request message did not arrive within {waited:g} s",
            )
        )

    def _deadline_capped(self) -> DeadlineExceeded:
        cap = self.limits.max_deadline_seconds
        return DeadlineExceeded(
            reason="DEADLINE_CAPPED",
            message=f"a call runs for {cap:g} s at most, whatever deadline it asks for",
            metadata={"max_deadline_seconds": f"{cap:g}"},
        )

    def capped(self, behaviour: Behaviour) -> Behaviour:
        """`behaviour` ended, as if its deadline came, once it has run for
        the cap; a call whose own deadline comes sooner costs no timer."""
        cap = self.limits.max_deadline_seconds
        expired = self._deadline_capped

        async def run(request: Any, context: Context) -> Any:
            remaining = context.time_remaining()
            if remaining is not None and remaining <= cap:
                return await behaviour(request, context)
            # A clamp, not a refusal: asking for more (or for no deadline,
            # as many clients do by default) is not wrong, and the call is
            # still bounded.
            capped: Any = _CappedContext(context, time.monotonic() + cap)
            timer = asyncio.timeout(cap)
            try:
                async with timer:
                    return await behaviour(request, capped)
            except TimeoutError:
                if not timer.expired():
                    raise
                raise expired() from None

        return run

    def handler(
        self,
        serve: Behaviour,
        request_deserializer: Callable[[bytes], Any] | None,
        response_serializer: Callable[[Any], bytes] | None,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        """`serve` (a unary method behind the error mapping) as a handler
        that reads its request within the timeout and counts it as work."""
        most = self.limits.max_concurrent_rpcs
        not_received = self._not_received
        reads = self._reads

        async def guarded(_requests: Any, context: Context) -> Any:
            request: Any
            task = asyncio.current_task()
            assert task is not None
            reads.begin(task)
            try:
                request = await context.read()
            except asyncio.CancelledError:
                if task not in reads.expired:
                    raise  # the client went away
                reads.expired.discard(task)
                task.uncancel()
                request = not_received
            else:
                if request is _EOF:
                    request = NO_REQUEST
            finally:
                reads.end(task)
            if self.active >= most:
                request = BUSY
            self.active += 1
            try:
                return await serve(request, context)
            finally:
                self.active -= 1

        return grpc.stream_unary_rpc_method_handler(
            guarded,
            request_deserializer=request_deserializer,
            response_serializer=response_serializer,
        )
