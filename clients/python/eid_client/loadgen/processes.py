"""Running a plan in this process or in several: each process opens its own
channels, waits for the others, warms up, waits again, then measures; the
parent merges the raw results exactly.

Processes are spawned (not forked: gRPC's threads do not survive a fork) and
meet at a barrier after connecting and after warming up, so the measured
phases start within a millisecond or so of each other.

Ctrl-C stops a run early with what it measured so far: the children ignore
SIGINT (the terminal sends it to them too) and stop when the parent, which
takes it, raises a shared flag; they then send their partial results. A
second Ctrl-C gives up waiting for them.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized, SynchronizedArray
from multiprocessing.synchronize import Barrier
from typing import Any

import grpc

from eid_client.async_client import AsyncEidClient
from eid_client.errors import EidError
from eid_client.loadgen.plan import RunPlan, Share
from eid_client.loadgen.progress import ProgressView
from eid_client.loadgen.result import LoadResult
from eid_client.loadgen.runner import run_load
from eid_client.loadgen.workloads import WORKLOADS
from eid_client.retry import RetryPolicy

BARRIER_SECONDS = 120.0  # starting a process and connecting takes a second or two
STOP_POLL_SECONDS = 0.05  # how soon a child sees the parent's Ctrl-C
STOPPING_SECONDS = 30.0  # how long the parent waits for the children's partial results


class Interrupted(Exception):
    """Ctrl-C came before the measured phase began: there is nothing to report."""


class RunError(Exception):
    """A process could not run its part; ``unavailable``: the server was unreachable."""

    def __init__(self, message: str, *, unavailable: bool = False) -> None:
        super().__init__(message)
        self.unavailable = unavailable


@dataclass
class ProcessResult:
    result: LoadResult
    started_wall: float  # time.time() when its measured phase began
    warmup_calls: int
    exhausted: bool  # stopped because its prepared items ran out
    interrupted: bool = False  # stopped early by Ctrl-C: the result is partial


def channel_options() -> list[tuple[str, Any]]:
    # Channels to one target share a TCP connection unless each has its own
    # subchannel pool; --channels N must mean N connections.
    return [("grpc.use_local_subchannel_pool", 1)]


def connect(plan: RunPlan) -> AsyncEidClient:
    """A client on a channel of its own."""
    return AsyncEidClient(
        plan.target,
        api_key=plan.api_key,
        timeout=plan.timeout,
        options=channel_options(),
        tls=plan.tls,
        # Every failure is counted, not hidden by a retry's extra latency.
        retry=RetryPolicy.off(),
    )


async def run_share(
    plan: RunPlan,
    share: Share,
    *,
    sync: Callable[[], Awaitable[None]],
    tick: Callable[[], None] | None = None,
    progress: bool = False,
    stop: asyncio.Event | None = None,
) -> ProcessResult:
    """This process's part of ``plan``; setting ``stop`` ends it early (the
    measured phase with a partial result, anything before it with
    :class:`Interrupted`)."""
    stop = stop or asyncio.Event()
    workload = WORKLOADS[plan.workload]
    items = share.items
    clients = [connect(plan) for _ in range(plan.channels)]
    try:
        # A health check on each channel opens its connection before the clock starts.
        await asyncio.gather(*(c.health() for c in clients))
        await sync()
        first = 0  # the index of the phase's first item

        def call(i: int) -> Awaitable[None]:
            n = first + i
            return workload.call(clients[i % len(clients)], items[n % len(items)])

        def phase(
            total: int | None,
            duration: float | None,
            label: str,
            count: Callable[[], None] | None,
        ) -> Awaitable[LoadResult]:
            return run_load(
                call,
                total=total,
                duration=duration,
                concurrency=share.concurrency,
                rps=share.rps,
                offset=share.offset,
                progress=progress,
                label=label,
                tick=count,
                stop=stop,
            )

        warmup = 0
        if share.warmup_calls is not None or plan.warmup_seconds is not None:
            warm_limit = _limit(share.warmup_calls, len(items), 0, workload.consumes)
            warm = await phase(warm_limit, plan.warmup_seconds, "warming up", None)
            warmup = first = warm.count
        if stop.is_set():
            raise Interrupted("interrupted before measuring began")
        await sync()
        started_wall = time.time()
        limit = _limit(share.total, len(items), first, workload.consumes)
        result = await phase(limit, plan.duration, workload.label, tick)
        exhausted = False  # out of items before the count or the time was up
        if workload.consumes and limit is not None:
            exhausted = result.count >= limit and (share.total is None or limit < share.total)
        return ProcessResult(result, started_wall, warmup, exhausted, stop.is_set())
    finally:
        for client in clients:
            await client.close()


def _limit(calls: int | None, items: int, used: int, consumes: bool) -> int | None:
    if not consumes:
        return calls
    left = max(0, items - used)
    return left if calls is None else min(calls, left)


def _child(
    plan: RunPlan,
    share: Share,
    counters: SynchronizedArray[int],
    measuring: Synchronized[float],
    stopping: Synchronized[int],
    barrier: Barrier,
    conn: Connection,
) -> None:
    """A spawned process: runs its share and sends back ("ok", ProcessResult) or
    ("error", (message, unavailable))."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent says when to stop
    phase = 0

    def tick() -> None:
        counters[share.index] += 1  # its own slot: no lock needed

    async def sync() -> None:
        nonlocal phase
        await asyncio.to_thread(barrier.wait, BARRIER_SECONDS)
        phase += 1
        if phase == 2 and share.index == 0:
            measuring.value = time.time()

    async def run() -> ProcessResult:
        stop = asyncio.Event()

        async def watch() -> None:
            # A flag in shared memory, set by another process: polled (a thread
            # blocked on a multiprocessing.Event would hold up asyncio.run's end).
            while not stopping.value:  # noqa: ASYNC110
                await asyncio.sleep(STOP_POLL_SECONDS)
            stop.set()

        watcher = asyncio.create_task(watch())
        try:
            return await run_share(plan, share, sync=sync, tick=tick, stop=stop)
        finally:
            watcher.cancel()

    try:
        conn.send(("ok", asyncio.run(run())))
    except Interrupted as e:
        barrier.abort()
        conn.send(("error", (str(e), False)))
    except EidError as e:
        barrier.abort()
        conn.send(("error", (str(e), e.code == grpc.StatusCode.UNAVAILABLE)))
    except Exception as e:  # reported by the parent, which decides the exit status
        barrier.abort()
        conn.send(("error", (f"{type(e).__name__}: {e}", False)))
    finally:
        conn.close()


def run_processes(plan: RunPlan, shares: list[Share], progress: bool) -> list[ProcessResult]:
    """Each share in a process of its own; the results in share order."""
    ctx = multiprocessing.get_context("spawn")
    counters = ctx.Array("q", len(shares), lock=False)
    measuring = ctx.Value("d", 0.0, lock=False)
    stopping = ctx.Value("b", 0, lock=False)
    barrier = ctx.Barrier(len(shares))
    pipes = [ctx.Pipe(duplex=False) for _ in shares]
    procs = [
        ctx.Process(
            target=_child,
            args=(plan, share, counters, measuring, stopping, barrier, send),
            name=f"eid-loadgen-{share.index}",
        )
        for share, (_, send) in zip(shares, pipes, strict=True)
    ]
    for p in procs:
        p.start()
    for _, send in pipes:
        send.close()  # the children hold their ends
    answers: dict[int, tuple[str, Any]] = {}
    view = None
    if progress:
        view = ProgressView(
            WORKLOADS[plan.workload].label, total=plan.total, duration=plan.duration
        )
        view.__enter__()
    stop_by = 0.0  # when Ctrl-C came: the children have until STOPPING_SECONDS after
    try:
        with _first_ctrl_c_stops() as interrupted:
            while len(answers) < len(procs):
                if interrupted() and not stop_by:
                    stop_by = time.monotonic() + STOPPING_SECONDS
                    stopping.value = 1
                    if not measuring.value:
                        barrier.abort()  # free those waiting: nothing was measured
                if stop_by and time.monotonic() > stop_by:
                    raise KeyboardInterrupt
                _collect(pipes, answers)
                if view is not None:
                    since = measuring.value
                    label = WORKLOADS[plan.workload].label if since else "connecting, warming up"
                    if stop_by:
                        label = "stopping"
                    view.show(sum(counters), time.time() - since if since else 0.0, label)
                time.sleep(0.05)
    finally:
        if view is not None:
            view.__exit__()
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.terminate()
                p.join()
    if stop_by and any(a[0] == "error" for a in answers.values()):
        raise Interrupted("interrupted before measuring began")
    # The first cause, not the others' broken barrier.
    errors = sorted(
        (a[1] for a in answers.values() if a[0] == "error"),
        key=lambda e: e[0].startswith("BrokenBarrierError"),
    )
    if errors:
        message, unavailable = errors[0]
        raise RunError(message, unavailable=any(u for _, u in errors) or unavailable)
    return [answers[k][1] for k in range(len(procs))]


def _collect(
    pipes: list[tuple[Connection, Connection]], answers: dict[int, tuple[str, Any]]
) -> None:
    """The answers of the children that sent theirs."""
    for k, (recv, _) in enumerate(pipes):
        if k not in answers and recv.poll():
            try:
                answers[k] = recv.recv()
            except EOFError:  # it died without a word
                answers[k] = ("error", (f"process {k} exited", False))


@contextmanager
def _first_ctrl_c_stops() -> Iterator[Callable[[], bool]]:
    """Yields whether Ctrl-C came: the first one only says so (the children stop
    and send what they measured), a second one raises KeyboardInterrupt."""
    pressed = 0

    def on_sigint(_signum: int, _frame: object) -> None:
        nonlocal pressed
        pressed += 1
        if pressed > 1:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield lambda: pressed > 0
    finally:
        signal.signal(signal.SIGINT, previous)


def merge(parts: list[ProcessResult]) -> tuple[LoadResult, int, bool, bool]:
    """The processes' results on one timeline: (result, warm-up calls, exhausted,
    interrupted)."""
    start = min(p.started_wall for p in parts)
    merged = LoadResult.merge(p.result.shifted(p.started_wall - start) for p in parts)
    warmup_calls = sum(p.warmup_calls for p in parts)
    return merged, warmup_calls, any(p.exhausted for p in parts), any(p.interrupted for p in parts)
