"""make bench: eid's Verify next to a bare gRPC echo server, measured in one run.

Starts a bare echo server and a fresh eid server (temporary directory, embedded
SQLite) as separate processes on loopback, then measures over several rounds,
with the same load generator and concurrency: the echo, eid Verify by QR share
token and by password, and the bare Argon2id and Ed25519 verifications under
them. Prints medians across rounds and the ratios that matter, and writes
everything as JSON (default var/bench/latest.json).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import grpc
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bench.stack import (
    BenchError,
    EidServer,
    ProcessSet,
    log_tail,
    scratch_postgres,
    start_echo_server,
    start_eid_server,
)
from bench.workloads import ARGON2_PARAMS, ISSUE_CONCURRENCY, BareCrypto, GrpcWorkloads
from eid_client.cli_args import positive_int
from eid_client.errors import EidError
from eid_client.loadgen import LoadResult

DEFAULT_OUT = Path("var/bench/latest.json")

# Key -> label, in the order they are measured and printed.
WORKLOADS = {
    "echo": "bare gRPC echo",
    "verify_token": "eid Verify (token)",
    "verify_password": "eid Verify (password)",
    "share_via_qr": f"eid ShareViaQR (setup, {ISSUE_CONCURRENCY} in flight)",
    "argon2id": "bare Argon2id verify",
    "ed25519": "bare Ed25519 verify (1 thread)",
}
# Ratio name -> (numerator, denominator) workloads, compared by median rps.
RATIOS = {
    "verify_token_vs_echo": ("verify_token", "echo"),
    "verify_password_vs_argon2id": ("verify_password", "argon2id"),
}

_EPILOG = """\
examples:
  make bench                                    the default run (about 2 minutes on 2 cores)
  .venv/bin/python -m bench --quick             a smoke test in a few seconds
  .venv/bin/python -m bench --rounds 3 --concurrency 64 --workers 2
  .venv/bin/python -m bench --out /tmp/bench.json && jq .ratios /tmp/bench.json

Calls per round: --calls N Verify(token) calls (each redeems a token issued just
before, not timed), 10*N echo calls, N/4 Verify(password) and bare Argon2id
calls (at least 4), 20*N Ed25519 verifications. Rounds interleave the
workloads, so a slow spell of the machine touches all of them. The gRPC calls
go round-robin over --channels connections (eid's workers share one port, and
the kernel spreads connections, not calls, over them).
"""


@dataclass(frozen=True)
class Plan:
    rounds: int
    concurrency: int
    workers: int
    channels: int
    quick: bool
    postgres: str | None
    calls: dict[str, int]
    warmup: dict[str, int]

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Plan:
        n = args.calls if args.calls is not None else (30 if args.quick else 300)
        calls = {
            "echo": 10 * n,
            "verify_token": n,
            "verify_password": max(4, n // 4),
            "share_via_qr": n,
            "argon2id": max(4, n // 4),
            "ed25519": 20 * n,
        }
        c = args.concurrency
        # Warm-up: connections, server caches and code paths, before the first round.
        warmup = {
            "echo": 4 * c,
            "verify_token": min(c, n),
            "verify_password": 2 if args.quick else 8,
            "argon2id": os.cpu_count() or 1,
            "ed25519": 200,
        }
        channels = args.channels if args.channels is not None else 4 * args.workers
        return cls(args.rounds, c, args.workers, channels, args.quick, args.postgres, calls, warmup)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--rounds", type=positive_int, default=5, metavar="N", help="rounds (default 5)"
    )
    parser.add_argument(
        "--concurrency",
        type=positive_int,
        default=32,
        metavar="N",
        help="calls in flight (default 32)",
    )
    parser.add_argument(
        "--calls",
        type=positive_int,
        metavar="N",
        help="Verify(token) calls per round; the others scale from it (default 300, quick 30)",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        metavar="N",
        help="eid server processes (default 1)",
    )
    parser.add_argument(
        "--channels",
        type=positive_int,
        metavar="N",
        help="gRPC channels (TCP connections) per server, calls spread round-robin "
        "(default 4 per eid worker)",
    )
    parser.add_argument("--quick", action="store_true", help="small numbers, for a smoke test")
    parser.add_argument(
        "--postgres",
        nargs="?",
        const="postgresql://postgres@127.0.0.1:5432/postgres",
        metavar="ADMIN_DSN",
        help="store in a scratch PostgreSQL database instead of SQLite "
        "(default admin DSN postgresql://postgres@127.0.0.1:5432/postgres)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        metavar="PATH",
        help=f"JSON results file (default {DEFAULT_OUT})",
    )
    return parser


Results = dict[str, list[LoadResult]]


async def measure(plan: Plan, echo_address: str, eid: EidServer, say: _Say) -> Results:
    progress = sys.stderr.isatty()
    results: Results = {key: [] for key in WORKLOADS}
    async with GrpcWorkloads(
        echo_address,
        eid,
        concurrency=plan.concurrency,
        channels=plan.channels,
        progress=progress,
    ) as grpc_load:
        say("registering and activating a demo citizen")
        await grpc_load.enroll()
        # The signed part of a real token: what eid's Ed25519 check covers.
        signed_part = grpc_load.sample_token.rsplit(".", 1)[0].encode("ascii")
        crypto = BareCrypto(signed_part, progress=progress)
        try:
            say("warming up")
            w = plan.warmup
            await grpc_load.echo(w["echo"])
            _, tokens = await grpc_load.issue_tokens(w["verify_token"])
            await grpc_load.verify_token(tokens)
            await grpc_load.verify_password(w["verify_password"])
            await crypto.argon2id_verify(w["argon2id"])
            crypto.ed25519_verify(w["ed25519"])
            for r in range(1, plan.rounds + 1):
                say(f"round {r}/{plan.rounds}")
                c = plan.calls
                results["echo"].append(await grpc_load.echo(c["echo"]))
                issued, tokens = await grpc_load.issue_tokens(c["verify_token"])
                results["share_via_qr"].append(issued)
                results["verify_token"].append(await grpc_load.verify_token(tokens))
                results["verify_password"].append(
                    await grpc_load.verify_password(c["verify_password"])
                )
                results["argon2id"].append(await crypto.argon2id_verify(c["argon2id"]))
                results["ed25519"].append(crypto.ed25519_verify(c["ed25519"]))
        finally:
            crypto.close()
    return results


class _Say:
    """Status lines on stderr, so stdout holds only the report."""

    def __init__(self) -> None:
        self._console = Console(stderr=True, highlight=False)
        self._started = time.monotonic()

    def __call__(self, text: str) -> None:
        elapsed = time.monotonic() - self._started
        self._console.print(Text(f"[{elapsed:6.1f}s] {text}", style="dim"))


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _medians(rounds: list[LoadResult]) -> dict[str, float]:
    return {
        "rps": round(_median([r.rps for r in rounds]), 2),
        "p50_ms": round(_median([r.p50_ms for r in rounds if r.latencies]), 3),
        "p99_ms": round(_median([r.p99_ms for r in rounds if r.latencies]), 3),
    }


def _ratio(num: float, den: float) -> float | None:
    return round(num / den, 4) if den > 0 else None


def build_report(plan: Plan, results: Results, started: datetime.datetime) -> dict[str, Any]:
    medians = {key: _medians(rounds) for key, rounds in results.items()}
    workloads = {
        key: {
            "label": WORKLOADS[key],
            "median": medians[key],
            "errors": sum(r.errors for r in rounds),
            "rounds": [r.summary() for r in rounds],
        }
        for key, rounds in results.items()
    }
    ratios = {name: _ratio(medians[a]["rps"], medians[b]["rps"]) for name, (a, b) in RATIOS.items()}
    per_round = [
        {name: _ratio(results[a][i].rps, results[b][i].rps) for name, (a, b) in RATIOS.items()}
        for i in range(plan.rounds)
    ]
    return {
        "schema": "eid-bench/1",
        "started_at": started.isoformat(timespec="seconds"),
        "duration_s": round((datetime.datetime.now(datetime.UTC) - started).total_seconds(), 1),
        "environment": {
            "python": platform.python_version(),
            "grpcio": grpc.__version__,
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "argon2id": ARGON2_PARAMS,
        },
        "config": asdict(plan) | {"issue_concurrency": ISSUE_CONCURRENCY},
        "workloads": workloads,
        "ratios": ratios,
        "ratios_per_round": per_round,
    }


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def print_report(report: dict[str, Any], console: Console) -> None:
    cfg = report["config"]
    console.print(
        Text(
            f"eid bench: concurrency {cfg['concurrency']}, {cfg['channels']} channels, "
            f"{cfg['workers']} eid worker(s) on {'PostgreSQL' if cfg['postgres'] else 'SQLite'}, "
            f"{report['environment']['cpu_count']} CPUs, "
            f"{cfg['rounds']} rounds",
            style="bold",
        )
    )
    summary = Table(title="median across rounds", title_justify="left")
    summary.add_column("workload", no_wrap=True)
    for column in ("rps", "p50 ms", "p99 ms", "errors"):
        summary.add_column(column, justify="right")
    for w in report["workloads"].values():
        m = w["median"]
        errors = Text(str(w["errors"]), style="red" if w["errors"] else "")
        summary.add_row(
            w["label"], _fmt(m["rps"]), _fmt(m["p50_ms"], 2), _fmt(m["p99_ms"], 2), errors
        )
    console.print(summary)

    ratios = Table(title="ratios (median rps)", title_justify="left")
    ratios.add_column("ratio")
    ratios.add_column("value", justify="right")
    ratios.add_column("per round", justify="right")
    for name, (a, b) in RATIOS.items():
        label = f"{report['workloads'][a]['label']} / {report['workloads'][b]['label']}"
        per_round = "  ".join(_fmt(r[name], 3) for r in report["ratios_per_round"])
        ratios.add_row(label, _fmt(report["ratios"][name], 3), per_round)
    console.print(ratios)

    rounds = Table(title="per round: rps (p50 / p99 ms)", title_justify="left")
    rounds.add_column("workload", no_wrap=True)
    for i in range(cfg["rounds"]):
        rounds.add_column(f"round {i + 1}", justify="right")
    for w in report["workloads"].values():
        cells = [
            f"{_fmt(r['rps'])} ({_fmt(r['p50_ms'], 1)} / {_fmt(r['p99_ms'], 1)})"
            for r in w["rounds"]
        ]
        rounds.add_row(w["label"], *cells)
    console.print(rounds)


def _raise_interrupt(_signum: int, _frame: FrameType | None) -> None:
    # SIGTERM takes the Ctrl-C path, so the servers are stopped the same way.
    raise KeyboardInterrupt


def run(plan: Plan, out: Path, say: _Say) -> int:
    started = datetime.datetime.now(datetime.UTC)
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="eid-bench-"))
        database_url = (
            stack.enter_context(scratch_postgres(plan.postgres)) if plan.postgres else None
        )
        procs = stack.enter_context(ProcessSet())
        workdir = Path(tmp)
        store = "PostgreSQL" if plan.postgres else "SQLite"
        say(f"starting the echo server and eid (workers={plan.workers}, {store}) in {workdir}")
        echo_address = start_echo_server(procs, workdir)
        eid = start_eid_server(procs, workdir, workers=plan.workers, database_url=database_url)
        try:
            results = asyncio.run(measure(plan, echo_address, eid, say))
        except (EidError, BenchError) as e:
            procs.check_alive()  # a dead server explains more than the failed call
            raise BenchError(f"{e}\n--- eid server log ---\n{log_tail(eid.log)}") from e
        say("stopping the servers")
    report = build_report(plan, results, started)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    # Piped or captured, rich would wrap the per-round table at 80 columns.
    print_report(report, Console(highlight=False, width=None if sys.stdout.isatty() else 160))
    say(f"results written to {out}")
    failed = {k: w["errors"] for k, w in report["workloads"].items() if w["errors"]}
    if failed:
        say(f"some calls failed: {failed} (error kinds are in {out})")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    plan = Plan.from_args(args)
    say = _Say()
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return run(plan, args.out, say)
    except BenchError as e:
        Console(stderr=True, highlight=False).print(Text(f"bench failed: {e}", style="red"))
        return 1
    except KeyboardInterrupt:
        say("interrupted; servers stopped")
        return 130


if __name__ == "__main__":
    sys.exit(main())
