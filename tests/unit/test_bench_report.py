"""The bench's report over what a run measured: the PostgreSQL ceiling's ratios
only when it ran, a targeted workload that is missing is a FAIL, not a crash,
the ceilings' own p99 is printed beside the p99 bounds, and the throughput
those bounds need beside the ceilings' (Little's law)."""

from __future__ import annotations

import datetime

from rich.console import Console

from bench.__main__ import build_parser
from bench.plan import POSTGRES_DURABLE_WRITE_THREADS, WORKLOAD_KEYS, Plan
from bench.report import TARGETS, Measured, build_report, print_report
from bench.stack import ProcessMemory
from eid_client.loadgen import LoadResult

ROUNDS = 2


def _plan(*args: str) -> Plan:
    return Plan.from_args(build_parser().parse_args(["--rounds", str(ROUNDS), *args]))


def _measured(rps: dict[str, float]) -> Measured:
    """`rps[key]` calls a second in each round, every call 10 ms; keys absent: not run."""
    results: dict[str, list[LoadResult]] = {key: [] for key in WORKLOAD_KEYS} | {
        key: [LoadResult(count=int(r), errors=0, elapsed=1.0, latencies=[0.01] * int(r))] * ROUNDS
        for key, r in rps.items()
    }
    return Measured(results, {}, [])


def _report(plan: Plan, rps: dict[str, float]) -> dict[str, object]:
    memory = {"eid (1 worker)": [ProcessMemory(1, "worker", 100.0)]}
    started = datetime.datetime.now(datetime.UTC)
    return build_report(plan, _measured(rps), memory, started, "ext4")


EVERY_SQLITE_WORKLOAD = {key: 1000.0 for key in WORKLOAD_KEYS if key != "durable_write_postgres"}


def test_the_postgres_ceiling_is_reported_only_when_it_ran() -> None:
    sqlite = _report(_plan(), EVERY_SQLITE_WORKLOAD)
    assert isinstance(sqlite["ratios"], dict) and isinstance(sqlite["workloads"], dict)
    assert "durable_write_postgres" not in sqlite["workloads"]
    assert "verify_qr_vs_durable_write_postgres" not in sqlite["ratios"]

    rps = EVERY_SQLITE_WORKLOAD | {"durable_write_postgres": 2000.0}
    postgres = _report(_plan("--postgres"), rps)
    assert isinstance(postgres["ratios"], dict)
    assert postgres["ratios"]["verify_qr_vs_durable_write_postgres"] == 0.5
    assert postgres["ratios"]["durable_write_postgres_vs_echo"] == 2.0


def test_a_targeted_workload_that_did_not_run_fails_its_row() -> None:
    rps = {k: v for k, v in EVERY_SQLITE_WORKLOAD.items() if k != "verify_demographic"}
    report = _report(_plan(), rps)
    verdicts = report["verdicts"]
    assert isinstance(verdicts, dict)
    assert verdicts["verify_demographic_vs_echo"] == "FAIL"
    assert set(verdicts) == set(TARGETS) | {"worker_rss_mb"}


def _with_latency(rounds: list[LoadResult], seconds: float) -> list[LoadResult]:
    return [LoadResult(r.count, 0, r.elapsed, [seconds] * r.count) for r in rounds]


def test_the_ceilings_own_p99_is_reported_beside_the_p99_bounds() -> None:
    rps = EVERY_SQLITE_WORKLOAD | {"durable_write_postgres": 1000.0}
    measured = _measured(rps)
    for key, ms in (("echo", 4), ("durable_write", 11), ("durable_write_group", 9)):
        measured.results[key] = _with_latency(measured.results[key], ms / 1000)
    # Every call of the PostgreSQL ceiling failed: it has no latencies.
    measured.results["durable_write_postgres"] = [
        LoadResult(count=10, errors=10, elapsed=1.0, latencies=[])
    ] * ROUNDS
    memory = {"eid (1 worker)": [ProcessMemory(1, "worker", 100.0)]}
    report = build_report(
        _plan("--postgres"), measured, memory, datetime.datetime.now(datetime.UTC), "ext4"
    )
    assert report["ceiling_p99_ms"] == {
        "echo": 4.0,
        "durable_write": 11.0,
        "durable_write_group": 9.0,
        "durable_write_postgres": None,
    }
    console = Console(record=True, width=400)
    print_report(report, console)
    assert (
        "p99 bounds (25 ms) beside the ceilings' own p99 in this run (ms): bare gRPC echo 4.00,"
        " bare durable write (commit per call) 11.00, bare durable write (group commit) 9.00,"
        f" bare durable write on PostgreSQL ({POSTGRES_DURABLE_WRITE_THREADS} threads) -"
    ) in console.export_text()


def test_the_throughput_a_p99_bound_needs_is_printed_against_the_ceilings() -> None:
    # 32 calls in flight and a 25 ms p99: at least 1,280 calls a second.
    rps = EVERY_SQLITE_WORKLOAD | {
        "echo": 2560.0,
        "durable_write": 1280.0,
        "durable_write_group": 640.0,
    }
    console = Console(record=True, width=400)
    print_report(_report(_plan(), rps), console)
    assert (
        "a p99 of 25 ms with 32 calls in flight needs at least 1,280.0 calls/s, as the mean"
        " latency is in flight / throughput (Little's law): 0.50x bare gRPC echo, 1.00x bare"
        " durable write (commit per call), 2.00x bare durable write (group commit) in this run"
    ) in console.export_text()
