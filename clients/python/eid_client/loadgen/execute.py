"""One run end to end: prepare the items, run the plan in one process or several,
merge the results."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass

from eid_client._commands import UsageError
from eid_client.loadgen.plan import RunPlan, Share, needs, shares
from eid_client.loadgen.prepare import prepare
from eid_client.loadgen.processes import (
    ProcessResult,
    connect,
    merge,
    run_processes,
    run_share,
)
from eid_client.loadgen.result import LoadResult
from eid_client.loadgen.workloads import WORKLOADS


@dataclass
class Outcome:
    result: LoadResult
    warmup_calls: int
    exhausted: bool
    prepared_items: int
    prepare_seconds: float
    interrupted: bool = False  # by Ctrl-C: the result holds the calls measured before


async def _prepare(
    plan: RunPlan, args: argparse.Namespace, count: int | None, progress: bool
) -> list[object]:
    async with connect(plan) as client:
        return await prepare(plan.workload, args, client, count, progress)


async def _alone() -> None:
    """The barrier of a run in one process: nobody to wait for."""


async def _run_alone(plan: RunPlan, share: Share, progress: bool) -> ProcessResult:
    """The whole run in this process; Ctrl-C stops it with what it measured."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Not on Windows: there Ctrl-C still interrupts, without a partial report.
    handled = True
    try:
        loop.add_signal_handler(signal.SIGINT, stop.set)
    except NotImplementedError:
        handled = False
    try:
        return await run_share(plan, share, sync=_alone, progress=progress, stop=stop)
    finally:
        if handled:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.remove_signal_handler(signal.SIGINT)


def execute(plan: RunPlan, args: argparse.Namespace, progress: bool) -> Outcome:
    workload = WORKLOADS[plan.workload]
    count = None
    if workload.consumes:
        sizes = needs(plan)
        if any(size is None for size in sizes):
            raise UsageError(
                f"{workload.name} uses up one prepared item per call: with --duration and "
                "no --rps, say how many to prepare (--prepare N) or give --total"
            )
        count = sum(size or 0 for size in sizes)
    started = time.perf_counter()
    items = asyncio.run(_prepare(plan, args, count, progress))
    prepare_seconds = time.perf_counter() - started
    parts = shares(plan, items, workload.consumes)
    if plan.processes == 1:
        done = [asyncio.run(_run_alone(plan, parts[0], progress))]
    else:
        done = run_processes(plan, parts, progress)
    result, warmup_calls, exhausted, interrupted = merge(done)
    prepared = len(items) if workload.consumes else 0
    return Outcome(result, warmup_calls, exhausted, prepared, prepare_seconds, interrupted)
