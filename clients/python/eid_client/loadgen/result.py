"""What a load run measured (:class:`LoadResult`), how results of several runs or
processes merge, and the percentile maths."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from grpc import aio

from eid_client.errors import EidError

# The reason of a Verify that answered OK but ``verified: false``.
NOT_VERIFIED = "NOT_VERIFIED"


class NotVerifiedError(Exception):
    """Verify answered ``verified: false`` (e.g. a wrong password); a failure in a load test."""


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks
    (numpy's default); NaN for no values. ``values`` need not be sorted."""
    return percentile_of_sorted(sorted(values), q)


def percentile_of_sorted(ordered: Sequence[float], q: float) -> float:
    """:func:`percentile` of values already sorted ascending (no copy)."""
    if not 0 <= q <= 100:
        raise ValueError("q must be between 0 and 100")
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def error_kind(error: BaseException) -> str:
    """A short label to group failures by: the status, then the ErrorInfo reason
    when there is one, e.g. ``"UNAVAILABLE"`` or ``"FAILED_PRECONDITION
    SHARE_ALREADY_REDEEMED"``; ``"OK NOT_VERIFIED"`` for a Verify that answered
    ``verified: false``; the exception's class name for anything else."""
    if isinstance(error, EidError):
        return error.code.name if error.reason is None else f"{error.code.name} {error.reason}"
    if isinstance(error, aio.AioRpcError):
        return error.code().name
    if isinstance(error, NotVerifiedError):
        return f"OK {NOT_VERIFIED}"
    return type(error).__name__


def split_kind(kind: str) -> tuple[str, str | None]:
    """``"RESOURCE_EXHAUSTED TOO_MANY_FAILED_ATTEMPTS"`` -> (status, reason)."""
    status, _, reason = kind.partition(" ")
    return status, reason or None


@dataclass
class LoadResult:
    """What one run of :func:`~eid_client.loadgen.run_load` measured.

    ``count`` is every call made, ``errors`` those that raised; ``latencies``
    (seconds) are of the successful calls only, and ``rps`` counts only them, so a
    server that fails fast does not look fast. ``offsets`` are when each
    successful call ended, in seconds from the start of the run (in the order of
    ``latencies``), ``error_offsets`` the same for the failed ones: the timeline.
    At a fixed rate a call's latency runs from when it was due to be sent, not
    from when it was sent, so a server that stalls is not let off (coordinated
    omission). ``send_lags`` (a fixed rate only) are how late each call went
    out, and ``held_at_cap`` how many of them waited for a free slot at the
    concurrency cap: lateness without waits at the cap is the client's own (its
    CPU could not keep up), not the server's.
    """

    count: int
    errors: int
    elapsed: float
    latencies: list[float]
    error_kinds: Counter[str] = field(default_factory=Counter)
    offsets: list[float] = field(default_factory=list)
    error_offsets: list[float] = field(default_factory=list)
    send_lags: list[float] = field(default_factory=list)
    held_at_cap: int = 0

    @property
    def ok(self) -> int:
        return self.count - self.errors

    @property
    def rps(self) -> float:
        return self.ok / self.elapsed if self.elapsed > 0 else 0.0

    def percentile_ms(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000

    @property
    def p50_ms(self) -> float:
        return self.percentile_ms(50)

    @property
    def p99_ms(self) -> float:
        return self.percentile_ms(99)

    @property
    def mean_ms(self) -> float:
        return sum(self.latencies) / len(self.latencies) * 1000 if self.latencies else math.nan

    def shifted(self, seconds: float) -> LoadResult:
        """The same calls on a timeline that starts ``seconds`` earlier."""
        return LoadResult(
            self.count,
            self.errors,
            self.elapsed + seconds,
            self.latencies,
            Counter(self.error_kinds),
            [o + seconds for o in self.offsets],
            [o + seconds for o in self.error_offsets],
            self.send_lags,
            self.held_at_cap,
        )

    @classmethod
    def merge(cls, results: Iterable[LoadResult]) -> LoadResult:
        """Several runs on one timeline (shift them first) as one: counts add up,
        the raw latencies are pooled (so percentiles are exact, never averages of
        percentiles) and the run lasts until the last one ended."""
        merged = cls(0, 0, 0.0, [])
        for r in results:
            merged.count += r.count
            merged.errors += r.errors
            merged.elapsed = max(merged.elapsed, r.elapsed)
            merged.latencies.extend(r.latencies)
            merged.error_kinds.update(r.error_kinds)
            merged.offsets.extend(r.offsets)
            merged.error_offsets.extend(r.error_offsets)
            merged.send_lags.extend(r.send_lags)
            merged.held_at_cap += r.held_at_cap
        return merged

    def summary(self) -> dict[str, Any]:
        """A JSON-ready digest (no raw latencies); unknown percentiles are ``None``."""
        ordered = sorted(self.latencies)

        def ms(q: float) -> float | None:
            return _finite(percentile_of_sorted(ordered, q) * 1000)

        return {
            "count": self.count,
            "ok": self.ok,
            "errors": self.errors,
            "elapsed_s": round(self.elapsed, 4),
            "rps": round(self.rps, 2),
            "mean_ms": _finite(self.mean_ms),
            "min_ms": ms(0),
            "p50_ms": ms(50),
            "p90_ms": ms(90),
            "p95_ms": ms(95),
            "p99_ms": ms(99),
            "max_ms": ms(100),
            "error_kinds": dict(self.error_kinds),
        }


def _finite(value: float) -> float | None:
    return round(value, 3) if math.isfinite(value) else None
