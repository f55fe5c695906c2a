"""Serving: one asyncio process per core, all on one port (SO_REUSEPORT,
claimed first so no second instance shares it), supervised (supervisor.py),
drained gracefully on SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable
from functools import partial
from multiprocessing.process import BaseProcess

from sqlalchemy.exc import DBAPIError

from eid_service import event_loop
from eid_service.app import bootstrap, create_server
from eid_service.config import Settings
from eid_service.config_view import mask_url
from eid_service.domain.errors import Unavailable
from eid_service.logs import configure_logging, traceback_fields
from eid_service.port_claim import PortTaken, claim_port
from eid_service.store.database import unreachable_reason
from eid_service.store.schema_version import (
    ShippedMigrationsUnreadable,
    schema_problem,
    shipped_revisions,
)
from eid_service.supervisor import CANNOT_START, Supervisor, stop_with_parent, watch_parent
from eid_service.telemetry import setup
from eid_service.transport import check_transport

log = logging.getLogger("eid.server")

# Tracked allocations (net) before a young collection; CPython's default is
# 700. A call allocates a few dozen containers, and with 32 calls in flight
# each collection of 700 found mostly live objects: it cost ~0.5 ms every
# dozen calls and moved them to the older generations (measured on Verify by
# token: about 9% of the process's CPU in collections).
GC_YOUNG_THRESHOLD = 10_000


class NotMigrated(RuntimeError):
    pass


async def serve_one(
    settings: Settings,
    stop_requested: Callable[[], bool] = lambda: False,
    parent_pid: int | None = None,
) -> None:
    """Serves until SIGTERM or SIGINT, or until the parent `parent_pid` (a
    worker's) is gone. `stop_requested` tells whether a stop came while the
    process was still starting (see _worker_main)."""
    runtime = bootstrap(settings, telemetry=setup.start())
    try:
        # The read engine: on SQLite the write engine would wait for the write lock.
        problem = await asyncio.to_thread(schema_problem, runtime.uow.read_engine)
    except BaseException:
        await runtime.close()
        raise
    if problem is not None:
        await runtime.close()
        raise NotMigrated(problem)
    running = await create_server(runtime, reuse_port=parent_pid is not None)
    settle_heap()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if stop_requested():
        stop.set()
    if parent_pid is not None:
        watching = asyncio.create_task(watch_parent(parent_pid, stop), name="parent-watch")
    log.info(
        "serving eid.v1 on %s (pid %d, %s event loop)",
        settings.listen,
        os.getpid(),
        event_loop.running_loop_kind(),
    )
    if settings.console_sender or settings.outbox_file is not None:
        log.warning(
            "development senders are on: messages, one-time codes included, go to %s",
            " and ".join(
                (["stdout"] if settings.console_sender else [])
                + ([str(settings.outbox_file)] if settings.outbox_file is not None else [])
            ),
        )
    await stop.wait()
    log.info("draining for up to %.0fs (pid %d)", settings.grace_seconds, os.getpid())
    await running.stop(settings.grace_seconds)
    await runtime.close()
    if parent_pid is not None:
        await watching
    log.info("stopped: calls drained, outbox dispatcher and purge ended (pid %d)", os.getpid())


def settle_heap() -> None:
    """Once the process is set up: its objects (modules, protobuf
    descriptors, SQLAlchemy, the runtime; about 110,000) are moved out of the
    collector's reach, so a full collection walks only what calls allocate
    since (it walked them all: ~150 ms in the middle of calls, a p99 of its
    own), and young collections come less often (GC_YOUNG_THRESHOLD). Cycles
    made while serving are still collected."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def _worker_main(settings: Settings, parent_pid: int) -> None:
    if not stop_with_parent(parent_pid):
        return  # the parent died before this worker got going
    configure_logging()
    # The parent decides when we stop; a terminal's Ctrl-C reaches us via it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A SIGTERM forwarded while this worker still starts must not kill it
    # half-way (exit status -15): remember it, and stop as soon as serving.
    early_stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: early_stop.set())
    try:
        event_loop.run(serve_one(settings, early_stop.is_set, parent_pid), settings.event_loop)
    except NotMigrated as e:
        log.error("%s", e)
        sys.exit(CANNOT_START)
    except (DBAPIError, Unavailable) as down:
        # Replaced: the database may be on its way up (a host's boot).
        _database_unreachable(settings, down)
        sys.exit(1)
    except Exception as error:  # multiprocessing would print it raw, message and all
        log.error("worker failed: %s", type(error).__name__, extra=traceback_fields(error))
        sys.exit(1)


def serve(settings: Settings) -> int:
    """Runs `settings.workers` processes; returns an exit status."""
    try:
        setup.settings_from_env()  # each worker starts its own; a bad setting stops all here
    except ValueError as bad:
        log.error("bad telemetry settings: %s", bad)
        return 2
    try:
        # Here, once, not in each worker: a fault would have the supervisor replace them forever.
        shipped_revisions()
    except ShippedMigrationsUnreadable as unreadable:
        log.error("this build's migrations cannot be read: %s", unreadable)
        return CANNOT_START
    refusal = check_transport(settings)
    if refusal is not None:
        log.error("not serving: %s", refusal)
        return 2
    try:
        claim = claim_port(settings.listen)
    except PortTaken as taken:
        log.error("%s", taken)
        return 2
    try:
        return _serve_claimed(settings)
    finally:
        claim.release()


def _serve_claimed(settings: Settings) -> int:
    if settings.workers <= 1:
        try:
            event_loop.run(serve_one(settings), settings.event_loop)
        except NotMigrated as e:
            log.error("%s", e)
            return 2
        except (DBAPIError, Unavailable) as down:
            _database_unreachable(settings, down)
            return 1
        return 0
    if settings.listen.endswith(":0"):
        log.error("several workers need a fixed port, not :0")
        return 2
    return Supervisor(
        settings.workers, partial(_worker, settings, os.getpid()), settings.grace_seconds
    ).run()


def _database_unreachable(settings: Settings, down: Exception) -> None:
    """One line, as the other commands say it: where (password masked) and
    why in fixed words, no frames (a condition, not a defect)."""
    where = mask_url(settings.database_url)
    log.error(
        "not serving: the database cannot be reached at %s (%s)", where, unreachable_reason(down)
    )


def _worker(settings: Settings, parent_pid: int, index: int) -> BaseProcess:
    spawn = multiprocessing.get_context("spawn")
    return spawn.Process(
        target=_worker_main, args=(settings, parent_pid), name=f"eid-worker-{index}"
    )


__all__ = ["NotMigrated", "configure_logging", "serve", "serve_one", "settle_heap"]
