"""run_load and its result maths, with a fake call instead of a server."""

from __future__ import annotations

import asyncio
import io
import itertools
import math
import time
from collections import Counter
from typing import Any

import grpc
import pytest
from rich.console import Console

from eid_client.errors import EidError
from eid_client.loadgen import (
    LoadResult,
    NotVerifiedError,
    error_kind,
    main,
    percentile,
    run_load,
    runner,
)
from eid_client.loadgen.plan import RunPlan
from eid_client.loadgen.report import build_report, render


async def test_makes_each_call_once_and_times_every_success() -> None:
    seen: list[int] = []

    async def call(i: int) -> None:
        seen.append(i)
        await asyncio.sleep(0)

    result = await run_load(call, total=100, concurrency=8)

    assert sorted(seen) == list(range(100))
    assert (result.count, result.errors, result.ok) == (100, 0, 100)
    assert len(result.latencies) == 100
    assert all(latency >= 0 for latency in result.latencies)
    assert result.elapsed > 0
    assert result.rps == pytest.approx(100 / result.elapsed)


async def test_counts_errors_by_kind_and_leaves_them_out_of_rps_and_latency() -> None:
    async def call(i: int) -> None:
        if i % 5 == 0:
            raise ValueError("boom")
        if i % 7 == 0:
            raise EidError(grpc.StatusCode.UNAVAILABLE, "down")

    result = await run_load(call, total=70, concurrency=4)

    failed_value = len([i for i in range(70) if i % 5 == 0])
    failed_eid = len([i for i in range(70) if i % 5 and i % 7 == 0])
    assert result.count == 70
    assert result.errors == failed_value + failed_eid
    assert result.error_kinds == {"ValueError": failed_value, "UNAVAILABLE": failed_eid}
    assert len(result.latencies) == result.ok == 70 - result.errors
    assert result.rps == pytest.approx(result.ok / result.elapsed)


@pytest.mark.parametrize(("total", "concurrency", "expected_max"), [(50, 8, 8), (3, 8, 3)])
async def test_keeps_exactly_concurrency_calls_in_flight(
    total: int, concurrency: int, expected_max: int
) -> None:
    in_flight = 0
    peak = 0

    async def call(_: int) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001)
        in_flight -= 1

    result = await run_load(call, total=total, concurrency=concurrency)

    assert peak == expected_max
    assert in_flight == 0
    assert result.count == total


async def test_zero_calls_is_an_empty_result() -> None:
    async def call(_: int) -> None:
        raise AssertionError("not called")

    result = await run_load(call, total=0, concurrency=4)

    assert (result.count, result.errors, result.latencies) == (0, 0, [])
    assert result.rps == 0.0
    assert math.isnan(result.p50_ms)
    assert result.summary()["p50_ms"] is None


@pytest.mark.parametrize(("total", "concurrency"), [(-1, 1), (1, 0)])
async def test_rejects_nonsense_arguments(total: int, concurrency: int) -> None:
    async def call(_: int) -> None:
        pass

    with pytest.raises(ValueError, match="must be"):
        await run_load(call, total=total, concurrency=concurrency)


def test_percentiles_interpolate_between_closest_ranks() -> None:
    values = [float(v) for v in range(10, 0, -1)]  # unsorted on purpose
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == pytest.approx(5.5)
    assert percentile(values, 90) == pytest.approx(9.1)
    assert percentile(values, 99) == pytest.approx(9.91)
    assert percentile(values, 100) == 10.0
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile(values, 101)


def test_result_properties_are_in_milliseconds_and_count_only_successes() -> None:
    result = LoadResult(count=12, errors=2, elapsed=2.0, latencies=[v / 1000 for v in range(1, 11)])
    assert result.ok == 10
    assert result.rps == 5.0
    assert result.p50_ms == pytest.approx(5.5)
    assert result.p99_ms == pytest.approx(9.91)
    assert result.mean_ms == pytest.approx(5.5)
    summary = result.summary()
    assert summary["rps"] == 5.0
    assert summary["max_ms"] == pytest.approx(10.0)


def test_error_kind_names_the_status_and_reason() -> None:
    redeemed = EidError(
        grpc.StatusCode.FAILED_PRECONDITION, "used", reason="SHARE_ALREADY_REDEEMED"
    )
    assert error_kind(redeemed) == "FAILED_PRECONDITION SHARE_ALREADY_REDEEMED"
    assert error_kind(TimeoutError()) == "TimeoutError"


def test_cli_without_api_key_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EID_API_KEY", raising=False)
    argv = ["verify-password", "--id", "001190791514", "--password", "x" * 12]
    assert main(argv) == 2


def test_cli_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify-token", "--help"]) == 0
    assert "--session" in capsys.readouterr().out


async def test_fixed_rate_sends_each_call_when_due_and_not_before() -> None:
    sent: list[float] = []

    async def call(_: int) -> None:
        sent.append(time.perf_counter())

    started = time.perf_counter()
    result = await run_load(call, total=20, rps=200)

    assert result.count == result.ok == 20
    # Call i is due i/200 s after the start: the last one, 95 ms in.
    assert sent[-1] - started >= 19 / 200
    assert all(b >= a for a, b in itertools.pairwise(sent))


async def test_fixed_rate_times_calls_from_when_they_were_due() -> None:
    # One call at a time, each taking 30 ms, due every 10 ms: they queue, and the
    # queueing counts (the fifth, due at 40 ms, ends at 150 ms: 110 ms late).
    async def call(_: int) -> None:
        await asyncio.sleep(0.03)

    result = await run_load(call, total=5, rps=100, concurrency=1)

    assert min(result.latencies) >= 0.03
    assert max(result.latencies) >= 0.1


class _RunClock:
    """The runner's perf_counter, moved only by the calls: each takes STEP
    from its start, however busy the machine is."""

    STEP = 1 / 64  # exact in binary: the sums compare exactly with the duration

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


async def test_duration_stops_starting_calls_when_time_is_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = _RunClock()
    monkeypatch.setattr(runner, "time", clock)
    began: list[float] = []

    async def call(_: int) -> None:
        began.append(start := clock.now)
        await asyncio.sleep(0)
        clock.now = max(clock.now, start + clock.STEP)

    result = await run_load(call, duration=0.25, concurrency=2)

    # Two at a time, each STEP long, for 0.25 s: 16 rounds.
    assert result.count == result.ok == 2 * 16
    assert result.elapsed >= 0.25
    # Every call began before the deadline and ended one call's time after it at most.
    assert max(began) < 0.25
    assert max(result.offsets) <= 0.25 + clock.STEP
    assert len(result.offsets) == result.ok


async def test_total_ends_a_duration_run_early() -> None:
    async def call(_: int) -> None:
        pass

    result = await run_load(call, total=7, duration=30, rps=1000)

    assert result.count == 7
    # The 7 calls are due within 6 ms: a guard against running out the 30 s,
    # not a timing.
    assert result.elapsed < 5


async def test_errors_keep_their_place_on_the_timeline() -> None:
    async def call(i: int) -> None:
        if i % 2:
            raise NotVerifiedError

    result = await run_load(call, total=10, concurrency=1)

    assert len(result.error_offsets) == result.errors == 5
    assert result.error_kinds == {"OK NOT_VERIFIED": 5}
    assert len(result.offsets) == result.ok == 5


def test_merge_pools_raw_latencies_and_adds_counts() -> None:
    a = LoadResult(3, 1, 1.0, [0.001, 0.002], Counter({"UNAVAILABLE": 1}), [0.5, 0.9], [0.7])
    b = LoadResult(4, 0, 1.5, [0.010, 0.020, 0.030, 0.040], Counter(), [0.2, 0.4, 0.6, 1.4])

    merged = LoadResult.merge([a.shifted(0.25), b])

    assert (merged.count, merged.errors, merged.ok) == (7, 1, 6)
    assert merged.elapsed == 1.5  # b ended last; a, started 0.25 s later, at 1.25
    assert merged.offsets[:2] == [0.75, 1.15]
    assert merged.error_offsets == [0.95]
    # Percentiles of the pooled calls, not an average of each run's.
    assert merged.p50_ms == pytest.approx(percentile(a.latencies + b.latencies, 50) * 1000)
    assert merged.error_kinds == {"UNAVAILABLE": 1}


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"total": 1, "rps": 0.0}, {"duration": 0.0}, {"total": 1, "concurrency": 0}],
)
async def test_rejects_runs_without_an_end_or_a_rate(kwargs: dict[str, Any]) -> None:
    async def call(_: int) -> None:
        pass

    with pytest.raises(ValueError, match=r"must be|give total"):
        await run_load(call, **kwargs)


def test_cli_prints_a_servers_error_message_as_text(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A setup call refused with a message the server (or a proxy) chose."""
    refused = EidError(grpc.StatusCode.PERMISSION_DENIED, "no\x1b[1A\x1b[2Kall calls ok")

    def fail(*args: Any) -> Any:
        raise refused

    monkeypatch.setattr("eid_client.loadgen.cli.execute", fail)
    assert main(["verify-token", "--session", "s", "--api-key", "k"]) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and "no\\x1b[1A\\x1b[2Kall calls ok" in err


async def test_stop_ends_the_run_with_the_calls_that_ended_before_it() -> None:
    stop = asyncio.Event()
    never = asyncio.Event()

    async def call(i: int) -> None:
        if i == 5:
            stop.set()  # as Ctrl-C does
        if i >= 5:
            await never.wait()  # in flight when the run stops

    result = await asyncio.wait_for(run_load(call, total=1000, concurrency=2, stop=stop), 5)

    # Calls 0-4 ended; 5 and 6 were in flight and are not counted; none started after.
    assert (result.count, result.ok, len(result.latencies)) == (5, 5, 5)


async def test_stop_ends_a_fixed_rate_run_too() -> None:
    stop = asyncio.Event()

    async def call(i: int) -> None:
        if i == 3:
            stop.set()

    result = await asyncio.wait_for(run_load(call, duration=60, rps=100, stop=stop), 5)

    assert 3 <= result.count <= 4
    assert result.elapsed < 1


def _plan(rps: float | None, concurrency: int) -> RunPlan:
    return RunPlan(
        workload="health",
        target="127.0.0.1:1",
        api_key=None,
        timeout=5.0,
        channels=1,
        concurrency=concurrency,
        rps=rps,
        total=None,
        duration=1.0,
        warmup_calls=None,
        warmup_seconds=None,
        processes=1,
    )


def _report_text(plan: RunPlan, result: LoadResult) -> tuple[dict[str, Any], str]:
    """The --json report and the terminal's text, on one line."""
    report = build_report(
        plan, result, warmup_calls=0, exhausted=False, prepared_items=0, prepare_seconds=0.0
    )
    out = io.StringIO()
    Console(file=out, width=200).print(render(report))
    return report, " ".join(out.getvalue().split())


async def test_a_rate_the_client_cannot_sustain_is_blamed_on_the_client() -> None:
    # Each call holds the event loop 4 ms (a CPU-bound client): at most 250 calls
    # a second go out of the 1,000 asked for, against a server that answers at once.
    async def call(_: int) -> None:
        busy_until = time.perf_counter() + 0.004
        while time.perf_counter() < busy_until:  # CPU work: the loop runs nothing else
            pass

    result = await run_load(call, total=60, rps=1000, concurrency=32)
    report, text = _report_text(_plan(1000, 32), result)

    schedule = report["schedule"]
    assert schedule["held_at_cap"] == 0
    # The 60th call was due at 59 ms and went out after 59 x 4 ms: ~180 ms late.
    assert schedule["late_max_ms"] >= 100
    assert schedule["client_behind"] is True
    assert "the client fell behind" in text
    assert "the server" not in text


async def test_a_server_slower_than_the_rate_fills_the_cap_and_is_not_blamed_on_the_client() -> (
    None
):
    async def call(_: int) -> None:
        # The server takes 200 ms; 2 in flight make 10 calls/s. Long enough that
        # a test process starved of CPU for a while (2 busy cores, other test
        # workers) does not find both calls done before the next is due: at 50 ms
        # one did, now and then, and that call did not wait.
        await asyncio.sleep(0.2)

    result = await run_load(call, total=12, rps=200, concurrency=2)
    report, text = _report_text(_plan(200, 2), result)

    schedule = report["schedule"]
    assert schedule["held_at_cap"] >= 9  # all but the first two or so waited for a slot
    assert schedule["client_behind"] is False
    assert "waited for one of the 2 calls in flight" in text
    assert "the client fell behind" not in text


async def test_a_closed_loop_has_no_schedule_to_fall_behind() -> None:
    async def call(_: int) -> None:
        return None

    result = await run_load(call, total=5, concurrency=2)
    report, _ = _report_text(_plan(None, 2), result)

    assert report["schedule"] is None
