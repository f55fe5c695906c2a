"""Serving: one asyncio process per core, all on one port (SO_REUSEPORT),
drained gracefully on SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable
from multiprocessing.process import BaseProcess

from eid_service.app import bootstrap, create_server
from eid_service.config import Settings
from eid_service.logs import configure_logging
from eid_service.store.migrate import schema_is_current
from eid_service.telemetry import setup

log = logging.getLogger("eid.server")


class NotMigrated(RuntimeError):
    pass


async def serve_one(settings: Settings, stop_requested: Callable[[], bool] = lambda: False) -> None:
    """Serves until SIGTERM or SIGINT. `stop_requested` tells whether one came
    while the process was still starting (see _worker_main)."""
    runtime = bootstrap(settings, telemetry=setup.start())
    if not await asyncio.to_thread(schema_is_current, runtime.uow.engine, settings.database_url):
        await runtime.close()
        raise NotMigrated("the database schema is not current: run `eid-server migrate`")
    running = await create_server(runtime)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if stop_requested():
        stop.set()
    log.info("serving eid.v1 on %s (pid %d)", settings.listen, os.getpid())
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


def _worker_main(settings: Settings) -> None:
    configure_logging()
    # The parent decides when we stop; a terminal's Ctrl-C reaches us via it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A SIGTERM forwarded while this worker still starts must not kill it
    # half-way (exit status -15): remember it, and stop as soon as serving.
    early_stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: early_stop.set())
    try:
        asyncio.run(serve_one(settings, early_stop.is_set))
    except NotMigrated as e:
        log.error("%s", e)
        sys.exit(2)


def serve(settings: Settings) -> int:
    """Runs `settings.workers` processes; returns an exit status."""
    try:
        setup.settings_from_env()  # each worker starts its own; a bad setting stops all here
    except ValueError as bad:
        log.error("bad telemetry settings: %s", bad)
        return 2
    if settings.workers <= 1:
        try:
            asyncio.run(serve_one(settings))
        except NotMigrated as e:
            log.error("%s", e)
            return 2
        return 0
    if settings.listen.endswith(":0"):
        log.error("several workers need a fixed port, not :0")
        return 2
    spawn = multiprocessing.get_context("spawn")
    workers: list[BaseProcess] = []
    stopping = threading.Event()

    def forward(signum: int, _frame: object) -> None:
        stopping.set()
        for w in workers:
            if w.is_alive() and w.pid is not None:
                os.kill(w.pid, signal.SIGTERM)

    # Before the first worker starts, so a stop asked for meanwhile is not lost.
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for index in range(settings.workers):
        if stopping.is_set():
            break
        worker = spawn.Process(target=_worker_main, args=(settings,), name=f"eid-worker-{index}")
        worker.start()
        workers.append(worker)
    if stopping.is_set():
        forward(signal.SIGTERM, None)
    status = 0
    for w in workers:
        w.join()
        code = w.exitcode or 0
        # A worker still importing when we asked it to stop dies of that very
        # signal: it stopped as asked.
        if code == -signal.SIGTERM and stopping.is_set():
            code = 0
        status = status or code
    return status


__all__ = ["NotMigrated", "configure_logging", "serve", "serve_one"]
