"""The ``eid-loadgen`` command line: options, workloads, output and exit status."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.text import Text

from eid_client._commands import UsageError
from eid_client._output import terminal_safe
from eid_client.cli_args import (
    add_connection_options,
    defaults_for,
    positive_int,
    tls_from_args,
)
from eid_client.errors import EidError
from eid_client.loadgen import options
from eid_client.loadgen.chart import write_chart
from eid_client.loadgen.execute import execute
from eid_client.loadgen.plan import RunPlan
from eid_client.loadgen.prepare import PrepareError
from eid_client.loadgen.processes import Interrupted, RunError
from eid_client.loadgen.report import build_report, render
from eid_client.loadgen.workload_options import add_workloads

DEFAULT_TOTAL = 1000
CLOSED_CONCURRENCY = 32
OPEN_CONCURRENCY_CAP = 1000

_DESCRIPTION = """\
Load generator for eid capacity tests, like ghz: one RPC and mode per run
(the WORKLOAD), at a fixed concurrency (as fast as it goes) or at a fixed rate
(--rps, an open loop: calls go out on schedule whether earlier ones answered
or not, and each call's latency runs from when it was due, so a stalling
server is not let off), for a number of calls (--total) or a time
(--duration), after a warm-up that is not measured (--warmup).

What the calls need (share tokens, one-time codes, sessions, citizens) is
prepared before the clock starts, so each measured call is only the call.
--processes N shares the load among N processes (one Python process tops
out at a few thousand calls a second); their raw latencies are merged, so
percentiles are exact.

It prints throughput, latency percentiles, a latency histogram and the
errors by status and ErrorInfo reason; --json prints them as JSON (schema
eid-loadgen/1, documented in eid_client/loadgen/report.py) and --chart
draws throughput and latency over time (needs matplotlib). A progress bar
is drawn when stderr is a terminal. Ctrl-C stops the run and prints the
report of the calls measured so far (the calls then in flight are not
counted). Exit status: 0 when every measured call succeeded, 1 when any
failed (or preparing failed), 2 for bad usage, 130 when interrupted.
"""

_EPILOG = """\
examples (a server from `make run`; a party that may call often about one
citizen: eid-server party create --name Load --modes password,qr_share,demographic \\
  --rate-limit 1000000 --citizen-rate-limit 1000000 | tail -n1):
  eid-loadgen --rps 500 --duration 10s health
  eid-loadgen --api-key $KEY verify-password --id 001190791514 --total 200
  eid-loadgen --api-key $KEY --concurrency 64 --warmup 200 verify-token \\
      --id 001190791514 --total 5000
  eid-loadgen --api-key $KEY --rps 300 --duration 30s --warmup 5s --processes 2 \\
      --chart load.png verify-token --id 001190791514
  eid-loadgen --api-key $KEY --duration 1m --prepare 60000 verify-token --id 001190791514
  eid-loadgen --api-key $KEY --json --total 500 verify-demographic --id 001190791514 \\
      --name "Nguyễn Thị Lan" --birth-date 1990-05-17 --gender female | jq .summary
  eid-loadgen --total 100 register --citizens unregistered.csv
  eid-loadgen --api-key $KEY --total 50 verify-otp --citizens otp-citizens.csv \\
      --outbox var/outbox.log

`eid-loadgen WORKLOAD --help` tells what each workload needs.
environment: EID_TARGET, EID_API_KEY, EID_PASSWORD, EID_SESSION
"""


def _load_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default = defaults_for(suppress)
    group = parser.add_argument_group("connection")
    add_connection_options(
        group,
        default,
        timeout=30.0,
        api_key_help="relying-party API key (Verify, StartApproval)",
        json_help="print the report as JSON (schema eid-loadgen/1) instead of tables",
    )
    group.add_argument(
        "--channels",
        type=positive_int,
        default=default(1),
        metavar="N",
        help="gRPC channels (TCP connections) per process, calls spread over them (default 1)",
    )
    load = parser.add_argument_group("load")
    load.add_argument(
        "--total",
        "-n",
        type=positive_int,
        default=default(None),
        metavar="N",
        help=f"measured calls to make, then stop (default {DEFAULT_TOTAL} without --duration)",
    )
    load.add_argument(
        "--duration",
        "-z",
        type=options.duration,
        default=default(None),
        metavar="TIME",
        help="measure for this long, e.g. 30s, 2m (with --total: whichever comes first)",
    )
    load.add_argument(
        "--rps",
        type=options.rate,
        default=default(None),
        metavar="R",
        help="a fixed rate, calls a second in all (default: as fast as --concurrency allows)",
    )
    load.add_argument(
        "--concurrency",
        "-c",
        type=positive_int,
        default=default(None),
        metavar="N",
        help=f"calls in flight in all (default {CLOSED_CONCURRENCY}); with --rps, at most "
        f"this many (default {OPEN_CONCURRENCY_CAP})",
    )
    load.add_argument(
        "--warmup",
        type=options.warmup,
        default=default((None, None)),
        metavar="N|TIME",
        help="calls (e.g. 200) or time (e.g. 5s) to warm up first, not measured",
    )
    load.add_argument(
        "--processes",
        "-p",
        type=positive_int,
        default=default(1),
        metavar="N",
        help="processes to share the load (default 1; about one per spare core)",
    )
    load.add_argument(
        "--prepare",
        type=positive_int,
        default=default(None),
        metavar="N",
        help="items to prepare for a workload that uses one per call, when the run cannot "
        "tell (--duration without --rps)",
    )
    load.add_argument(
        "--chart",
        type=Path,
        default=default(None),
        metavar="PNG",
        help="also draw throughput and latency over time to this PNG (needs matplotlib)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eid-loadgen",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _load_options(parser, suppress=False)
    add_workloads(parser, lambda p: _load_options(p, suppress=True))
    return parser


def plan_from(args: argparse.Namespace) -> RunPlan:
    warmup_calls, warmup_seconds = args.warmup
    total = args.total
    if total is None and args.duration is None:
        total = DEFAULT_TOTAL
    concurrency = args.concurrency
    if concurrency is None:
        concurrency = CLOSED_CONCURRENCY if args.rps is None else OPEN_CONCURRENCY_CAP
    try:
        tls = tls_from_args(args)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.rps is None and args.processes > concurrency:
        raise UsageError(
            f"--processes {args.processes} needs --concurrency {args.processes} or more"
        )
    return RunPlan(
        workload=args.workload,
        target=args.target,
        api_key=args.api_key,
        timeout=args.timeout,
        channels=args.channels,
        concurrency=concurrency,
        rps=args.rps,
        total=total,
        duration=args.duration,
        warmup_calls=warmup_calls,
        warmup_seconds=warmup_seconds,
        processes=args.processes,
        prepare=args.prepare,
        tls=tls,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 all calls ok, 1 some failed, 2 bad usage,
    130 interrupted)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help and usage errors: return, don't exit, for callers
        return exc.code if isinstance(exc.code, int) else 2
    stdout, stderr = Console(highlight=False), Console(stderr=True, highlight=False)
    progress = not args.json and sys.stderr.isatty()
    try:
        plan = plan_from(args)
        if args.workload_api_key and not args.api_key:
            raise UsageError(
                f"{args.workload} is a relying-party call: pass --api-key or set EID_API_KEY"
            )
        if args.chart is not None and importlib.util.find_spec("matplotlib") is None:
            raise UsageError("--chart needs matplotlib: pip install 'eid-client[chart]'")
        outcome = execute(plan, args, progress)
    except UsageError as e:
        stderr.print(Text(f"error: {e}"))
        return 2
    except (
        EidError,
        RunError,
        PrepareError,
    ) as e:  # setup failed, or a process could not run
        stderr.print(Text(terminal_safe(f"error: {e}")))  # a server's message, as text
        unreachable = getattr(e, "unavailable", False) or (
            isinstance(e, EidError) and e.code.name == "UNAVAILABLE"
        )
        if unreachable:
            stderr.print(Text(f"Is the eid server running at {args.target}?", style="dim"))
        return 1
    except (KeyboardInterrupt, Interrupted):
        stderr.print(Text("interrupted before measuring began: nothing to report"))
        return 130
    report = build_report(
        plan,
        outcome.result,
        warmup_calls=outcome.warmup_calls,
        exhausted=outcome.exhausted,
        prepared_items=outcome.prepared_items,
        prepare_seconds=outcome.prepare_seconds,
        interrupted=outcome.interrupted,
    )
    if args.chart is not None:
        try:
            write_chart(report, args.chart)
        except OSError as e:
            stderr.print(Text(f"error: cannot write {args.chart}: {e.strerror}"))
            return 1
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        stdout.print(render(report))
        if args.chart is not None:
            stderr.print(Text(f"chart written to {args.chart}", style="dim"))
    if outcome.interrupted:
        stderr.print(Text("interrupted: the report is of the calls measured before Ctrl-C"))
        return 130
    return 1 if outcome.result.errors else 0
