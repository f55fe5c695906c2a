"""Health on a real gRPC server: a drain tells watchers NOT_SERVING and
releases them, so a load balancer's watch does not hold the drain."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from eid_service.api.health import DrainingHealth
from eid_service.transport import ALONE_ON_PORT

Status = health_pb2.HealthCheckResponse


async def test_a_drain_tells_watchers_and_does_not_wait_for_them() -> None:
    server = aio.server(options=[ALONE_ON_PORT])
    health = DrainingHealth()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    health.set("eid.v1.IdentityService", Status.SERVING)
    async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        listed = await stub.List(health_pb2.HealthListRequest(), timeout=5)
        assert dict(listed.statuses) == {
            "": Status(status=Status.SERVING),
            "eid.v1.IdentityService": Status(status=Status.SERVING),
        }
        watch = stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=30)
        assert (await watch.read()).status == Status.SERVING

        started = time.monotonic()
        health.enter_graceful_shutdown()
        stopping = asyncio.ensure_future(server.stop(20))
        seen = []
        while (said := await watch.read()) is not aio.EOF:  # type: ignore[attr-defined]
            seen.append(said.status)
        assert seen == [Status.NOT_SERVING]
        assert await watch.code() == grpc.StatusCode.OK
        await stopping
    assert time.monotonic() - started < 5  # not the 20 s grace


class _SlowWrites:
    """A Watch's context whose writes complete only when the test says so."""

    def __init__(self) -> None:
        self.written: list[int] = []
        self.release = asyncio.Event()

    async def write(self, response: health_pb2.HealthCheckResponse) -> None:
        self.written.append(response.status)
        await self.release.wait()
        self.release.clear()


async def test_a_drain_begun_during_a_write_is_still_told() -> None:
    # The client can read a message before the server's write of it completes:
    # a drain begun meanwhile was not told (seen once in CI: the watch ended
    # without its NOT_SERVING).
    health = DrainingHealth()
    context = _SlowWrites()
    watching = asyncio.ensure_future(
        # Only write() is what a Watch uses of its context.
        health.Watch(health_pb2.HealthCheckRequest(service=""), cast(Any, context))
    )
    await asyncio.sleep(0)
    assert context.written == [Status.SERVING]  # still being written

    health.enter_graceful_shutdown()
    context.release.set()
    await asyncio.sleep(0)
    context.release.set()
    await asyncio.wait_for(watching, 5)
    assert context.written == [Status.SERVING, Status.NOT_SERVING]
