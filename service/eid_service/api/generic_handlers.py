"""eid's services added to a grpc.aio server as generic handlers only.

The generated ``add_*Servicer_to_server`` functions register each method
twice: in a generic handler, and as a "registered method". grpc.aio keeps
one pending request per registered method (one more for everything else),
and every call that arrives makes its accept loop run ``asyncio.wait`` over
all of them again: with the 39 methods served (eid's 35, health's and
reflection's) that was 5 to 6% of a token Verify's event-loop samples
(py-spy), and a worker used about 17% more CPU per call (A/B runs).
Generic handlers serve the same methods, with the same handlers and
interceptors, through a single pending request.

The price: gRPC queues each pending request's calls apart, so eid's methods
now share one queue. Health stays registered (app.py): its own pending
requests pick a load balancer's probe up ahead of a backlog of eid calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import grpc
from grpc import aio


class _Lookup(grpc.HandlerCallDetails):
    """A call to `method`, as a generic handler is asked about it."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


class _GenericOnly:
    """What the generated functions call on a server: the handlers go in as
    generic ones; registering them again as methods is left out, once it is
    sure the generic ones serve them (else the server would start and answer
    UNIMPLEMENTED)."""

    __slots__ = ("_generic", "_server")

    def __init__(self, server: aio.Server) -> None:
        self._server = server
        self._generic: list[grpc.GenericRpcHandler[Any, Any]] = []

    def add_generic_rpc_handlers(
        self, handlers: Sequence[grpc.GenericRpcHandler[Any, Any]]
    ) -> None:
        self._server.add_generic_rpc_handlers(handlers)
        self._generic.extend(handlers)

    def add_registered_method_handlers(
        self, service_name: str, method_handlers: Mapping[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        for name in method_handlers:
            call = _Lookup(f"/{service_name}/{name}")
            if not any(g.service(call) is not None for g in self._generic):
                raise RuntimeError(f"{call.method} would be served by no generic handler")


def generic_only(server: aio.Server) -> aio.Server:
    """`server` for ``add_*Servicer_to_server``: what they add serves every
    call through one pending request (see the module's docstring)."""
    # The generated functions call only the two methods above; another
    # would fail at start-up (AttributeError), not at a call.
    return cast(aio.Server, _GenericOnly(server))
