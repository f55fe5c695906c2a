""":func:`run_load`: calls as fast as a fixed number in flight allows (closed
loop) or at a fixed rate (open loop), for a number of calls or a duration."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from eid_client.loadgen.progress import progress_bar
from eid_client.loadgen.result import LoadResult, error_kind

Call = Callable[[int], Awaitable[object]]


class _Recorder:
    """Each call's outcome, on the timeline of the run that started at ``t0``."""

    def __init__(self, t0: float, tick: Callable[[], None]) -> None:
        self.t0 = t0
        self.tick = tick
        self.latencies: list[float] = []
        self.offsets: list[float] = []
        self.error_offsets: list[float] = []
        self.kinds: Counter[str] = Counter()
        self.last_end = t0
        self.send_lags: list[float] = []  # at a fixed rate: how late each call went out
        self.held_at_cap = 0  # at a fixed rate: calls that waited for a free slot

    async def timed(self, call: Call, index: int, since: float) -> None:
        """Make call ``index``; its latency runs from ``since``."""
        try:
            await call(index)
        except Exception as error:  # counted, not fatal: the run measures failures too
            end = time.perf_counter()
            self.kinds[error_kind(error)] += 1
            self.error_offsets.append(end - self.t0)
        else:
            end = time.perf_counter()
            self.latencies.append(end - since)
            self.offsets.append(end - self.t0)
        self.last_end = max(self.last_end, end)
        self.tick()

    def result(self) -> LoadResult:
        errors = sum(self.kinds.values())
        return LoadResult(
            len(self.latencies) + errors,
            errors,
            self.last_end - self.t0,
            self.latencies,
            self.kinds,
            self.offsets,
            self.error_offsets,
            self.send_lags,
            self.held_at_cap,
        )


async def run_load(
    call: Call,
    *,
    total: int | None = None,
    concurrency: int = 32,
    rps: float | None = None,
    duration: float | None = None,
    offset: float = 0.0,
    progress: bool = False,
    label: str = "calls",
    tick: Callable[[], None] | None = None,
    stop: asyncio.Event | None = None,
) -> LoadResult:
    """Make calls ``call(0)``, ``call(1)``, ... until ``total`` calls were made or
    ``duration`` seconds passed, whichever comes first (at least one is needed).

    Without ``rps`` (a closed loop) each of ``concurrency`` workers starts its
    next call as soon as its previous one ends, so exactly that many calls are in
    flight until the last ones drain. With ``rps`` (an open loop) call ``i`` is
    due at ``offset + i / rps`` seconds, whether earlier calls have answered or
    not; ``concurrency`` then only caps the calls in flight, and a call's latency
    runs from when it was due, so queueing behind a slow server counts
    (coordinated omission); the result tells how late each call went out and
    how many waited for a slot at the cap, so a client that cannot keep up is
    not mistaken for a slow server. A call that raises counts as an error and the run
    goes on; cancelling the run cancels the calls in flight. To spread the load
    over several channels, let ``call`` pick one from its index. ``progress``
    draws a rich progress bar on stderr; ``tick`` is called after every call.
    Setting ``stop`` (e.g. on Ctrl-C) ends the run early: no call starts after
    it, the calls in flight are cancelled and not counted, and the result holds
    the calls that ended before.
    """
    if total is None and duration is None:
        raise ValueError("give total or duration")
    if total is not None and total < 0:
        raise ValueError("total must be >= 0")
    if duration is not None and duration <= 0:
        raise ValueError("duration must be > 0")
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    if rps is not None and rps <= 0:
        raise ValueError("rps must be > 0")
    # The bar counts calls when their number is known, else it counts time.
    expected = total
    if duration is not None:
        due = None if rps is None else math.ceil(duration * rps - offset * rps)
        expected = None if due is None else min(due, total if total is not None else due)
    with progress_bar(label, total=expected, duration=duration, enabled=progress) as advance:

        def on_call() -> None:
            advance()
            if tick is not None:
                tick()

        t0 = time.perf_counter()
        deadline = None if duration is None else t0 + duration
        recorder = _Recorder(t0, on_call)
        limit = total if total is not None else None
        if rps is None:
            loop = _closed_loop(call, recorder, limit, deadline, concurrency)
        else:
            loop = _open_loop(call, recorder, limit, deadline, concurrency, rps, offset)
        await _until_stopped(loop, stop)
    return recorder.result()


async def _until_stopped(run: Coroutine[Any, Any, None], stop: asyncio.Event | None) -> None:
    """``run`` to its end, or until ``stop`` is set: then it is cancelled (its
    calls in flight with it)."""
    if stop is None:
        await run
        return
    task = asyncio.ensure_future(run)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((task, stopped), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if not task.cancelled():
        task.result()  # its exception, if it raised one


async def _closed_loop(
    call: Call,
    recorder: _Recorder,
    limit: int | None,
    deadline: float | None,
    concurrency: int,
) -> None:
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        # One event loop thread: taking the next index needs no lock.
        while limit is None or next_index < limit:
            started = time.perf_counter()
            if deadline is not None and started >= deadline:
                return
            index = next_index
            next_index += 1
            await recorder.timed(call, index, started)

    workers = concurrency if limit is None else min(concurrency, limit)
    async with asyncio.TaskGroup() as group:
        for _ in range(workers):
            group.create_task(worker())


async def _open_loop(
    call: Call,
    recorder: _Recorder,
    limit: int | None,
    deadline: float | None,
    cap: int,
    rps: float,
    offset: float,
) -> None:
    slots = asyncio.Semaphore(cap)

    async def one(index: int, due: float) -> None:
        try:
            recorder.send_lags.append(time.perf_counter() - due)
            await recorder.timed(call, index, due)
        finally:
            slots.release()

    interval = 1.0 / rps
    async with asyncio.TaskGroup() as group:
        index = 0
        while limit is None or index < limit:
            due = recorder.t0 + offset + index * interval
            if deadline is not None and due >= deadline:
                break
            wait = due - time.perf_counter()
            if wait > 0:
                # The loop wakes about every millisecond at best: calls that fell
                # due meanwhile go out together, each timed from when it was due.
                await asyncio.sleep(wait)
            if slots.locked():  # the server is slower than the rate at this cap
                recorder.held_at_cap += 1
            await slots.acquire()  # at the cap, wait: the latency clock is running
            group.create_task(one(index, due))
            index += 1
            if wait <= 0:
                # Behind schedule: let the call go out before scheduling the next,
                # else a burst of tasks not yet started holds every slot.
                await asyncio.sleep(0)
