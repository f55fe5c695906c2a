"""grpc.health.v1 whose Watch streams end when the server drains.

grpc_health's servicer keeps every Watch open until the server cancels it:
a load balancer watching health would hold each drain for its whole grace
period. Here a watcher is told NOT_SERVING and its stream ends (OK), so the
drain waits only for real calls."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


class DrainingHealth(health_pb2_grpc.HealthServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self._status: dict[str, int] = {"": SERVING}
        # Replaced on every change: a watcher waits on the one it saw.
        self._changed = asyncio.Event()
        self._draining = False

    async def Check(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        status = self._status.get(request.service)
        if status is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        return health_pb2.HealthCheckResponse(status=status)

    async def List(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        response = health_pb2.HealthListResponse()
        for name, status in self._status.items():
            response.statuses[name].status = status
        return response

    async def Watch(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        said = None
        while True:
            changed = self._changed
            status = self._status.get(request.service, SERVICE_UNKNOWN)
            if status != said:
                await context.write(health_pb2.HealthCheckResponse(status=status))
                said = status
                # The status may have changed (a drain begun) during the write.
                continue
            if self._draining:
                return
            await changed.wait()

    def set(self, service: str, status: int) -> None:
        if self._draining:
            return  # NOT_SERVING for good
        self._status[service] = status
        self._notify()

    def enter_graceful_shutdown(self) -> None:
        """Every service NOT_SERVING from now on; watchers are told and released."""
        self._draining = True
        for name in self._status:
            self._status[name] = NOT_SERVING
        self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
