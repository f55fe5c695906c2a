"""Workers and their parent. The parent starts the workers, replaces one that
dies (at once, then after a pause that doubles while it keeps dying young, so
a crash loop does not spin), stops them all on SIGTERM or SIGINT, and kills
one that outlives its drain. A worker in turn stops when its parent is gone,
so no orphan keeps serving."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import connection
from multiprocessing.process import BaseProcess

log = logging.getLogger("eid.server")

# A worker's exit status for "cannot start with these settings" (e.g. the
# schema is not current): replacing it would only loop, so everything stops.
CANNOT_START = 2
# A worker that dies sooner than this after its start is dying young.
YOUNG_SECONDS = 10.0
FIRST_PAUSE_SECONDS = 0.5
MAX_PAUSE_SECONDS = 30.0
# A worker still running this long after its drain's grace is killed.
KILL_AFTER_GRACE_SECONDS = 10.0
# How often a worker checks its parent (where no death signal is to be had).
PARENT_CHECK_SECONDS = 1.0
_PR_SET_PDEATHSIG = 1


def restart_pause(young_deaths: int) -> float:
    """Seconds before a replacement: none after one young death in a row,
    then 0.5, 1, 2, ... up to 30."""
    if young_deaths <= 1:
        return 0.0
    return min(MAX_PAUSE_SECONDS, FIRST_PAUSE_SECONDS * 2.0 ** (young_deaths - 2))


def _how_it_ended(exitcode: int) -> str:
    if exitcode < 0:
        return f"was killed by {signal.Signals(-exitcode).name}"
    return f"exited with status {exitcode}"


@dataclass
class _Slot:
    index: int
    process: BaseProcess | None = None
    started: float = 0.0
    young_deaths: int = 0
    due: float | None = None  # when to start its replacement (time.monotonic())


class Supervisor:
    """`make(index)` returns a worker process, not yet started."""

    def __init__(self, count: int, make: Callable[[int], BaseProcess], grace: float) -> None:
        self._slots = [_Slot(i) for i in range(count)]
        self._make = make
        self._grace = grace
        self._stopping = False
        self._status = 0

    def run(self) -> int:
        """Until SIGTERM or SIGINT, or a worker that cannot start; an exit status."""
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_write, False)

        def stop(_signum: int, _frame: object) -> None:
            self._stopping = True
            # Full, or closed once run() has returned: nothing left to wake.
            with contextlib.suppress(OSError):
                os.write(wake_write, b".")

        # Before the first worker starts, so a stop asked for meanwhile is not lost.
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            for slot in self._slots:
                if not self._stopping:
                    self._start(slot)
            while not self._stopping:
                self._wait(wake_read)
                for slot in self._slots:
                    if self._stop_asked():  # by a signal, or a worker that cannot start
                        break
                    if slot.process is not None and not slot.process.is_alive():
                        self._died(slot)
                    elif slot.due is not None and slot.due <= time.monotonic():
                        self._start(slot)
            return self._stop_all()
        finally:
            os.close(wake_read)
            os.close(wake_write)

    def _stop_asked(self) -> bool:
        return self._stopping

    def _start(self, slot: _Slot) -> None:
        process = self._make(slot.index)
        process.start()
        slot.process, slot.started, slot.due = process, time.monotonic(), None
        log.info("worker %d started (pid %s)", slot.index, process.pid)

    def _wait(self, wake_read: int) -> None:
        running = [s.process.sentinel for s in self._slots if s.process is not None]
        due = [s.due for s in self._slots if s.due is not None]
        timeout = max(0.0, min(due) - time.monotonic()) if due else None
        if wake_read in connection.wait([*running, wake_read], timeout):
            os.read(wake_read, 64)

    def _died(self, slot: _Slot) -> None:
        assert slot.process is not None and slot.process.exitcode is not None
        code, pid = slot.process.exitcode, slot.process.pid
        lived = time.monotonic() - slot.started
        slot.process = None
        if code == CANNOT_START:
            log.error("worker %d (pid %s) cannot start: stopping the others", slot.index, pid)
            self._status, self._stopping = CANNOT_START, True
            return
        slot.young_deaths = slot.young_deaths + 1 if lived < YOUNG_SECONDS else 0
        pause = restart_pause(slot.young_deaths)
        slot.due = time.monotonic() + pause
        log.warning(
            "worker %d (pid %s) %s after %.1f s: %s",
            slot.index,
            pid,
            _how_it_ended(code),
            lived,
            "replacing it"
            if pause == 0
            else f"replacing it in {pause:.1f} s ({slot.young_deaths} young deaths in a row)",
        )

    def _stop_all(self) -> int:
        running = [s for s in self._slots if s.process is not None]
        for slot in running:
            assert slot.process is not None
            slot.process.terminate()  # SIGTERM: the worker drains
        give_up = time.monotonic() + self._grace + KILL_AFTER_GRACE_SECONDS
        for slot in running:
            process = slot.process
            assert process is not None
            process.join(max(0.0, give_up - time.monotonic()))
            if process.exitcode is None:
                log.error("worker %d (pid %s) outlived its drain: killed", slot.index, process.pid)
                process.kill()
                process.join()
            code = process.exitcode or 0
            # A worker still starting when asked to stop dies of that very
            # signal: it stopped as asked.
            if code not in (0, -signal.SIGTERM) and self._status == 0:
                self._status = code if code > 0 else 1
        return self._status


def stop_with_parent(parent_pid: int) -> bool:
    """In a worker, first thing: asks Linux to send SIGTERM when the parent
    dies. False if it is gone already."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    return os.getppid() == parent_pid


async def watch_parent(parent_pid: int, stop: asyncio.Event) -> None:
    """Sets `stop` when the parent is gone (a worker is then adopted by
    another process): where there is no death signal, or it was missed."""
    while not stop.is_set():
        if os.getppid() != parent_pid:
            log.warning("the serving process (pid %d) is gone: stopping", parent_pid)
            stop.set()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PARENT_CHECK_SECONDS)
