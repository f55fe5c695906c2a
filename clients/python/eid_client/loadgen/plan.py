"""How a run is shared among ``--processes``: each process's calls, rate,
concurrency and prepared items."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from eid_client.tls import Tls


@dataclass(frozen=True)
class RunPlan:
    """A whole run, as the command line asked for it."""

    workload: str
    target: str
    api_key: str | None = field(repr=False)
    timeout: float
    channels: int  # per process
    concurrency: int  # all processes together; with rps, a cap on calls in flight
    rps: float | None  # all processes together
    total: int | None
    duration: float | None
    warmup_calls: int | None
    warmup_seconds: float | None
    processes: int
    prepare: int | None = None  # items to prepare when the run cannot tell (--prepare)
    tls: Tls | bool = False

    @property
    def mode(self) -> str:
        return "closed" if self.rps is None else "open"


@dataclass(frozen=True)
class Share:
    """One process's part of a run."""

    index: int
    concurrency: int
    rps: float | None
    offset: float  # when its first call is due, at a fixed rate: the processes interleave
    total: int | None
    warmup_calls: int | None
    items: list[Any] = field(repr=False)


def split(n: int, parts: int, index: int) -> int:
    """Part ``index`` of ``n`` cut into ``parts`` that differ by at most one."""
    return n // parts + (1 if index < n % parts else 0)


def _calls_in(seconds: float | None, calls: int | None, rps: float | None) -> int | None:
    """At most how many calls a phase makes; None when only time will tell."""
    if calls is not None:
        return calls
    if seconds is not None and rps is not None:
        return math.ceil(seconds * rps) + 1
    return None


def needs(plan: RunPlan) -> list[int | None]:
    """The items each process may use up (warm-up included): None when a closed
    loop runs for a time, unless ``prepare`` says how many to make."""
    out: list[int | None] = []
    for k in range(plan.processes):
        rps = None if plan.rps is None else plan.rps / plan.processes
        total = None if plan.total is None else split(plan.total, plan.processes, k)
        warm_calls = (
            None if plan.warmup_calls is None else split(plan.warmup_calls, plan.processes, k)
        )
        # A count bounds the calls even when a duration may end the run sooner.
        run = _calls_in(plan.duration, total, rps)
        warm: int | None = 0
        if plan.warmup_calls is not None or plan.warmup_seconds is not None:
            warm = _calls_in(plan.warmup_seconds, warm_calls, rps)
        if run is None or warm is None:
            out.append(None if plan.prepare is None else split(plan.prepare, plan.processes, k))
        else:
            out.append(warm + run)
    return out


def shares(plan: RunPlan, items: list[Any], consumes: bool) -> list[Share]:
    """Each process's part: consumed items are cut into contiguous slices sized by
    ``needs``; reused ones go to every process, each starting further along."""
    sizes = needs(plan)
    out = []
    start = 0
    for k in range(plan.processes):
        if consumes:
            size = sizes[k] if sizes[k] is not None else split(len(items), plan.processes, k)
            mine = items[start : start + (size or 0)]
            start += size or 0
        else:
            turn = k % len(items)
            mine = items[turn:] + items[:turn]
        out.append(
            Share(
                index=k,
                concurrency=max(1, split(plan.concurrency, plan.processes, k)),
                rps=None if plan.rps is None else plan.rps / plan.processes,
                offset=0.0 if plan.rps is None else k / plan.rps,
                total=None if plan.total is None else split(plan.total, plan.processes, k),
                warmup_calls=(
                    None
                    if plan.warmup_calls is None
                    else split(plan.warmup_calls, plan.processes, k)
                ),
                items=mine,
            )
        )
    return out
