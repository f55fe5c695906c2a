"""The report of a run: the ``--json`` document and the terminal tables.

``--json`` prints one object (schema ``eid-loadgen/1``; keys are only ever added):

- ``schema``, ``workload`` (the CLI's name), ``label`` (RPC and mode), ``rpc``,
  ``target``, ``mode`` (``"closed"``: --concurrency calls in flight;
  ``"open"``: a fixed rate), ``rps_target`` (null in a closed loop),
  ``concurrency`` (in flight, or the cap at a fixed rate), ``processes``,
  ``channels`` (per process), ``calls_target``, ``duration_s`` (what was asked;
  null when not), ``exhausted`` (the prepared items ran out first),
  ``interrupted`` (Ctrl-C stopped the run: the report is of the calls that
  ended before it; those then in flight are not counted);
- ``warmup``: ``calls`` made (not measured) and ``seconds`` asked;
- ``prepared``: ``items`` made beforehand and the ``seconds`` it took;
- ``summary``: ``count`` (calls made), ``ok``, ``errors`` (count = ok +
  errors), ``elapsed_s``, ``rps`` (successful calls per second), ``mean_ms``,
  ``min_ms``, ``p50_ms``, ``p90_ms``, ``p95_ms``, ``p99_ms``, ``max_ms`` (of the
  successful calls; null when there were none);
- ``errors``: ``[{status, reason, count}]``, most frequent first; ``reason`` is
  the google.rpc.ErrorInfo reason (null when none), status ``OK`` with reason
  ``NOT_VERIFIED`` a Verify that answered ``verified: false``; counts add up
  to ``summary.errors``;
- ``histogram``: ``[{from_ms, to_ms, count}]`` of the successful calls
  (counts add up to ``summary.ok``);
- ``timeline``: ``[{start_s, ok, errors, rps, p50_ms, p99_ms}]`` in windows of
  ``timeline_width_s`` seconds, by when each call ended;
- ``schedule`` (null in a closed loop): how well the fixed rate was kept.
  ``late_p50_ms``, ``late_p99_ms``, ``late_max_ms``: how long after it was due
  each call went out (this wait is in its latency); ``held_at_cap``: calls that
  waited for a free slot at ``concurrency`` (the server answered slower than
  the rate needs); ``client_behind``: calls went out late (p99 over
  ``LATE_TOLERANCE_MS``) with none held at the cap, i.e. the client itself
  could not keep up (its CPU: add ``--processes``), and the latencies measure
  it as much as the server.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from eid_client._output import terminal_safe
from eid_client.loadgen.plan import RunPlan
from eid_client.loadgen.result import LoadResult, percentile_of_sorted, split_kind
from eid_client.loadgen.workloads import WORKLOADS

SCHEMA = "eid-loadgen/1"
# An event loop wakes a millisecond or two late at best; later than this, at
# the 99th percentile, the client did not keep the rate.
LATE_TOLERANCE_MS = 10.0
HISTOGRAM_BUCKETS = 10
BAR_WIDTH = 40
TIMELINE_WIDTHS = (
    0.1,
    0.25,
    0.5,
    1.0,
)  # seconds; the first that gives at most 60 windows


def histogram(latencies: list[float], buckets: int = HISTOGRAM_BUCKETS) -> list[dict[str, Any]]:
    """Buckets between the fastest and the slowest call, in milliseconds, of equal
    width on a log scale (a tail 100 times the median still shows its shape)."""
    if not latencies:
        return []
    ordered = sorted(v * 1000 for v in latencies)
    low, high = ordered[0], ordered[-1]
    if high <= low or low <= 0:
        return [{"from_ms": round(low, 3), "to_ms": round(high, 3), "count": len(ordered)}]
    edges = [low * (high / low) ** (i / buckets) for i in range(buckets + 1)]
    edges[-1] = high  # no rounding error past the slowest
    out = []
    below = 0
    for i in range(buckets):
        upto = len(ordered) if i == buckets - 1 else bisect.bisect_left(ordered, edges[i + 1])
        out.append(
            {
                "from_ms": round(edges[i], 3),
                "to_ms": round(edges[i + 1], 3),
                "count": upto - below,
            }
        )
        below = upto
    return out


def timeline_width(elapsed: float) -> float:
    return next((w for w in TIMELINE_WIDTHS if elapsed / w <= 60), TIMELINE_WIDTHS[-1])


def timeline(result: LoadResult) -> tuple[float, list[dict[str, Any]]]:
    """Per window of the run: calls that ended in it, their rate and latency."""
    width = timeline_width(result.elapsed)
    # The last window takes the remainder: between half a window and one and a half.
    windows = max(1, round(result.elapsed / width))
    latencies: list[list[float]] = [[] for _ in range(windows)]
    errors: Counter[int] = Counter()
    for offset, latency in zip(result.offsets, result.latencies, strict=True):
        latencies[min(int(offset / width), windows - 1)].append(latency * 1000)
    for offset in result.error_offsets:
        errors[min(int(offset / width), windows - 1)] += 1
    out = []
    for i, values in enumerate(latencies):
        values.sort()
        span = width if i < windows - 1 else max(result.elapsed - i * width, width / 2)
        out.append(
            {
                "start_s": round(i * width, 3),
                "ok": len(values),
                "errors": errors[i],
                "rps": round(len(values) / span, 2),
                "p50_ms": _ms(percentile_of_sorted(values, 50)),
                "p99_ms": _ms(percentile_of_sorted(values, 99)),
            }
        )
    return width, out


def _ms(value: float) -> float | None:
    return round(value, 3) if math.isfinite(value) else None


def schedule(plan: RunPlan, result: LoadResult) -> dict[str, Any] | None:
    """At a fixed rate, how late the calls went out and why (see the module)."""
    if plan.rps is None:
        return None
    lags = sorted(result.send_lags)
    late_p99 = _ms(percentile_of_sorted(lags, 99) * 1000)
    behind = late_p99 is not None and late_p99 > LATE_TOLERANCE_MS
    return {
        "late_p50_ms": _ms(percentile_of_sorted(lags, 50) * 1000),
        "late_p99_ms": late_p99,
        "late_max_ms": _ms(percentile_of_sorted(lags, 100) * 1000),
        "held_at_cap": result.held_at_cap,
        "client_behind": behind and result.held_at_cap == 0,
    }


def build_report(
    plan: RunPlan,
    result: LoadResult,
    *,
    warmup_calls: int,
    exhausted: bool,
    prepared_items: int,
    prepare_seconds: float,
    interrupted: bool = False,
) -> dict[str, Any]:
    workload = WORKLOADS[plan.workload]
    summary = result.summary()
    kinds = summary.pop("error_kinds")
    width, windows = timeline(result)
    errors = [
        {"status": status, "reason": reason, "count": n}
        for (status, reason), n in (
            (split_kind(kind), n) for kind, n in Counter(kinds).most_common()
        )
    ]
    return {
        "schema": SCHEMA,
        "workload": workload.name,
        "label": workload.label,
        "rpc": workload.rpc,
        "target": plan.target,
        "mode": plan.mode,
        "rps_target": plan.rps,
        "concurrency": plan.concurrency,
        "processes": plan.processes,
        "channels": plan.channels,
        "calls_target": plan.total,
        "duration_s": plan.duration,
        "exhausted": exhausted,
        "interrupted": interrupted,
        "warmup": {"calls": warmup_calls, "seconds": plan.warmup_seconds},
        "prepared": {"items": prepared_items, "seconds": round(prepare_seconds, 3)},
        "summary": summary,
        "errors": errors,
        "histogram": histogram(result.latencies),
        "timeline_width_s": width,
        "timeline": windows,
        "schedule": schedule(plan, result),
    }


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def render(report: dict[str, Any]) -> Group:
    """The report as rich tables: summary, latency, histogram, errors."""
    s = report["summary"]
    if report["mode"] == "closed":
        how = f"{report['concurrency']} in flight"
    else:
        cap = report["concurrency"]
        how = f"{report['rps_target']:g} calls/s, open loop (at most {cap} in flight)"
    head = Table(title=f"eid-loadgen: {report['label']} on {report['target']}", show_header=False)
    head.add_column(style="bold")
    head.add_column()
    head.add_row(
        "load",
        f"{how}; {report['processes']} process(es) x {report['channels']} channel(s)",
    )
    head.add_row("warm-up", f"{report['warmup']['calls']:,} calls (not measured)")
    head.add_row(
        "prepared",
        f"{report['prepared']['items']:,} items in {report['prepared']['seconds']:.1f} s",
    )
    errors = Text(f"{s['errors']:,}", style="red" if s["errors"] else "")
    head.add_row("calls", Text.assemble(f"{s['count']:,} ({s['ok']:,} ok, ", errors, " failed)"))
    head.add_row("elapsed", f"{s['elapsed_s']:.2f} s")
    head.add_row("throughput", f"{s['rps']:,.1f} successful calls/s")
    latency = Table(title="latency (ms), successful calls", title_justify="left")
    keys = ("mean_ms", "min_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms")
    for key in keys:
        latency.add_column(key.removesuffix("_ms"), justify="right")
    latency.add_row(*(_num(s[k]) for k in keys))
    parts: list[Table | Text] = [head, latency]
    if report["histogram"]:
        parts.append(_histogram_table(report["histogram"]))
    if report["errors"]:
        failed = Table(title="errors", title_justify="left")
        for name in ("status", "reason", "count"):
            failed.add_column(name, justify="right" if name == "count" else "left")
        for e in report["errors"]:
            # Text of terminal_safe: the reason is what the server (or a proxy) sent.
            status, reason = (Text(terminal_safe(v)) for v in (e["status"], e["reason"] or "-"))
            failed.add_row(status, reason, Text(f"{e['count']:,}", style="red"))
        parts.append(failed)
    parts.extend(_schedule_warnings(report))
    if report["exhausted"]:
        parts.append(Text("the prepared items ran out before the end of the run", style="yellow"))
    if report["interrupted"]:
        parts.append(Text("interrupted by Ctrl-C: the calls measured until then", style="yellow"))
    return Group(*parts)


def _schedule_warnings(report: dict[str, Any]) -> list[Text]:
    """Why calls went out later than the rate asked: the server or the client."""
    plan = report["schedule"]
    if plan is None:
        return []
    out = []
    if plan["held_at_cap"]:
        out.append(
            Text(
                f"{plan['held_at_cap']:,} calls waited for one of the {report['concurrency']:,} "
                "calls in flight (--concurrency): the server answered slower than the rate "
                "needs; their wait counts in their latency",
                style="yellow",
            )
        )
    if plan["client_behind"]:
        out.append(
            Text(
                f"the client fell behind the rate: calls went out up to {plan['late_max_ms']:,.0f} "
                f"ms late (p99 {plan['late_p99_ms']:,.0f} ms) with slots free, so its own CPU "
                "could not keep up (add --processes); that wait counts in the latencies",
                style="yellow",
            )
        )
    return out


def _histogram_table(buckets: list[dict[str, Any]]) -> Table:
    table = Table(title="latency histogram (ms)", title_justify="left")
    table.add_column("up to", justify="right")
    table.add_column("calls", justify="right")
    table.add_column("")
    most = max(b["count"] for b in buckets) or 1
    for b in buckets:
        bar = "█" * round(BAR_WIDTH * b["count"] / most)
        table.add_row(_num(b["to_ms"]), f"{b['count']:,}", Text(bar, style="cyan"))
    return table
