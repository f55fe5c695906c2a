"""Services added to a grpc.aio server as generic handlers only.

The generated ``add_*Servicer_to_server`` functions register each method
twice: in a generic handler, and as a "registered method". grpc.aio keeps
one pending request per registered method (one more for everything else),
and every call that arrives makes its accept loop run ``asyncio.wait`` over
all of them again: with eid's 40 or so methods, a sixth of a QR Verify's
event-loop time went there (measured with py-spy). Generic handlers serve
the same methods, with the same handlers and interceptors, through a single
pending request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import grpc
from grpc import aio


class _GenericOnly:
    """What the generated functions call on a server: the handlers go in as
    generic ones; registering them again as methods is left out."""

    __slots__ = ("_server",)

    def __init__(self, server: aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(
        self, handlers: Sequence[grpc.GenericRpcHandler[Any, Any]]
    ) -> None:
        self._server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(
        self, service_name: str, method_handlers: Mapping[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        """Left out: the generic handler added with them serves these methods."""


def generic_only(server: aio.Server) -> aio.Server:
    """`server` for ``add_*Servicer_to_server``: what they add serves every
    call through one pending request (see the module's docstring)."""
    # The generated functions only call the two methods above.
    return cast(aio.Server, _GenericOnly(server))
