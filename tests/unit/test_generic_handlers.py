"""Services added as generic handlers only (api/generic_handlers.py): what
the generated add_*Servicer_to_server functions call reaches the server as
generic handlers, and a method no generic handler serves stops start-up."""

from __future__ import annotations

from typing import Any, cast

import grpc
import pytest
from grpc import aio

from eid_service.api.generic_handlers import generic_only


class RecordingServer:
    def __init__(self) -> None:
        self.generic: list[grpc.GenericRpcHandler[Any, Any]] = []
        self.registered: list[str] = []

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self.generic.extend(handlers)

    def add_registered_method_handlers(self, service: str, handlers: Any) -> None:
        self.registered.append(service)


async def _ping(request: bytes, context: Any) -> bytes:
    return request


PING = {"Ping": grpc.unary_unary_rpc_method_handler(_ping)}


def _as_generated_code_does(server: Any, service: str) -> None:
    # Any: the type stubs predate add_registered_method_handlers.
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, PING),))
    server.add_registered_method_handlers(service, PING)


def test_handlers_go_in_as_generic_ones_only() -> None:
    server = RecordingServer()
    _as_generated_code_does(generic_only(cast(aio.Server, server)), "t.Ping")
    assert len(server.generic) == 1
    assert server.registered == []


def test_a_method_no_generic_handler_serves_stops_start_up() -> None:
    """Were generated code ever to register a method only as a registered
    one, the server would start and answer UNIMPLEMENTED: it fails instead."""
    services: Any = generic_only(cast(aio.Server, RecordingServer()))
    services.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("t.Ping", PING),))
    with pytest.raises(RuntimeError, match=r"/t\.Other/Ping"):
        services.add_registered_method_handlers("t.Other", PING)


def test_another_server_method_fails_at_once() -> None:
    services = generic_only(cast(aio.Server, RecordingServer()))
    with pytest.raises(AttributeError):
        services.add_insecure_port("127.0.0.1:0")
