"""Load generator for eid capacity tests: :func:`run_load` and the ``eid-loadgen`` CLI.

:func:`run_load` keeps a fixed number of calls in flight until a fixed number
of calls has been made, and records the latency of each successful call::

    async with AsyncEidClient(target, api_key=key) as eid:
        result = await run_load(
            lambda i: eid.verify_password(personal_id=pid, password=pw),
            total=1000,
            concurrency=32,
        )
    print(result.rps, result.p50_ms, result.p99_ms)

The same function drives ``make bench`` (next to a bare gRPC echo server), so
figures from the CLI and from the bench are measured the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from textwrap import dedent, indent
from typing import Any

import grpc
from grpc import aio
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from eid_client._commands import UsageError, resolve_password
from eid_client.cli_args import (
    add_connection_options,
    defaults_for,
    positive_int,
    tls_from_args,
)
from eid_client.client import AsyncEidClient
from eid_client.errors import EidError
from eid_client.retry import RetryPolicy

# A share must outlive the run that redeems it; the server allows up to 24 hours.
SHARE_TTL = datetime.timedelta(hours=1)
# Result keys (stable, for --json) and their labels in the table.
LABELS = {
    "share_via_qr": "ShareViaQR (setup)",
    "verify_token": "Verify (token)",
    "verify_password": "Verify (password)",
}


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks
    (numpy's default); NaN for no values. ``values`` need not be sorted."""
    if not 0 <= q <= 100:
        raise ValueError("q must be between 0 and 100")
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class LoadResult:
    """What one run of :func:`run_load` measured.

    ``count`` is every call made, ``errors`` those that raised; ``latencies``
    (seconds) are of the successful calls only, and ``rps`` counts only them, so a
    server that fails fast does not look fast.
    """

    count: int
    errors: int
    elapsed: float
    latencies: list[float]
    error_kinds: Counter[str] = field(default_factory=Counter)

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

    def summary(self) -> dict[str, Any]:
        """A JSON-ready digest (no raw latencies); unknown percentiles are ``None``."""
        return {
            "count": self.count,
            "ok": self.ok,
            "errors": self.errors,
            "elapsed_s": round(self.elapsed, 4),
            "rps": round(self.rps, 2),
            "mean_ms": _finite(self.mean_ms),
            "p50_ms": _finite(self.p50_ms),
            "p90_ms": _finite(self.percentile_ms(90)),
            "p99_ms": _finite(self.p99_ms),
            "max_ms": _finite(self.percentile_ms(100)),
            "error_kinds": dict(self.error_kinds),
        }


def _finite(value: float) -> float | None:
    return round(value, 3) if math.isfinite(value) else None


def error_kind(error: BaseException) -> str:
    """A short label to group failures by, e.g. ``"UNAVAILABLE"`` or
    ``"FAILED_PRECONDITION SHARE_ALREADY_REDEEMED"``."""
    if isinstance(error, EidError):
        return error.code.name if error.reason is None else f"{error.code.name} {error.reason}"
    if isinstance(error, aio.AioRpcError):
        return error.code().name
    return type(error).__name__


class _RateColumn(ProgressColumn):
    """Calls per second so far, next to the bar."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f}/s" if speed else "", style="cyan")


@contextmanager
def _progress_bar(total: int, label: str, enabled: bool) -> Iterator[Callable[[], None]]:
    if not enabled:
        yield lambda: None
        return
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task_id = progress.add_task(label, total=total)
    with progress:
        yield lambda: progress.advance(task_id)


async def run_load(
    call: Callable[[int], Awaitable[object]],
    *,
    total: int,
    concurrency: int,
    progress: bool = False,
    label: str = "calls",
) -> LoadResult:
    """Make ``total`` calls ``call(0) .. call(total - 1)``, ``concurrency`` at a time.

    Each of ``concurrency`` workers starts its next call as soon as its previous
    one ends (a closed loop), so exactly that many calls are in flight until the
    last ones drain. To spread the load over several channels, let ``call`` pick
    a channel from its index. A call that raises counts as an error and the run
    goes on; cancelling the run cancels the calls in flight. ``progress`` draws
    a rich progress bar on stderr.
    """
    if total < 0:
        raise ValueError("total must be >= 0")
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    latencies: list[float] = []
    kinds: Counter[str] = Counter()
    next_index = 0

    with _progress_bar(total, label, progress) as advance:

        async def worker() -> None:
            nonlocal next_index
            # One event loop thread: taking the next index needs no lock.
            while next_index < total:
                index = next_index
                next_index += 1
                started = time.perf_counter()
                try:
                    await call(index)
                except Exception as error:  # counted, not fatal: the run measures failures too
                    kinds[error_kind(error)] += 1
                else:
                    latencies.append(time.perf_counter() - started)
                advance()

        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, total)):
                group.create_task(worker())
        elapsed = time.perf_counter() - started

    errors = sum(kinds.values())
    return LoadResult(len(latencies) + errors, errors, elapsed, latencies, kinds)


class NotVerifiedError(Exception):
    """Verify answered ``verified: false`` (e.g. a wrong password); a failure in a load test."""


# --- the eid-loadgen command line -------------------------------------------------------------

_DESCRIPTION = """\
Load generator for eid capacity tests. It makes --total Verify calls against
--target, keeping --concurrency calls in flight, then prints throughput (calls
per second), latency percentiles and errors. It stops after --total calls.

  verify-token     redeem QR share tokens; it first signs the citizen in and
                   pre-issues --total tokens with ShareViaQR (each token can be
                   redeemed once), then times the redemptions
  verify-password  check a citizen's ID number and password (Argon2id-bound)

Passwords are read from --password, else $EID_PASSWORD, else prompted for.
A progress bar is drawn when stderr is a terminal. Exit status: 0 when every
call succeeded, 1 when any failed, 2 for bad usage.
"""

_EPILOG = """\
examples:
  eid-loadgen --api-key $KEY verify-password --id 001190791514 --total 200
  eid-loadgen --api-key $KEY --concurrency 64 verify-token --id 001190791514 --total 2000
  eid-loadgen --api-key $KEY verify-token --session $EID_SESSION --json | jq .results
  eid-loadgen --target eid-staging:50051 --channels 4 --api-key $KEY verify-password \\
      --id 001190791514

environment: EID_TARGET, EID_API_KEY, EID_PASSWORD, EID_SESSION
"""


def _common_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default = defaults_for(suppress)
    group = parser.add_argument_group("load and connection")
    add_connection_options(
        group,
        default,
        timeout=30.0,
        api_key_help="relying-party API key",
        json_help="print the results as JSON instead of a table",
    )
    group.add_argument(
        "--total",
        type=positive_int,
        default=default(1000),
        metavar="N",
        help="Verify calls to make, then stop (default 1000)",
    )
    group.add_argument(
        "--concurrency",
        type=positive_int,
        default=default(32),
        metavar="N",
        help="calls kept in flight (default 32)",
    )
    group.add_argument(
        "--channels",
        type=positive_int,
        default=default(1),
        metavar="N",
        help="gRPC channels (TCP connections) to spread the calls over (default 1)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eid-loadgen",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common_options(parser, suppress=False)
    sub = parser.add_subparsers(title="workloads", metavar="WORKLOAD", required=True)

    def workload(name: str, summary: str, examples: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=summary,
            description=summary,
            epilog="examples:\n" + indent(dedent(examples).strip("\n"), "  "),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _common_options(p, suppress=True)
        p.set_defaults(workload=name)
        return p

    p = workload(
        "verify-token",
        "Pre-issue --total QR share tokens as a citizen, then redeem each once (Verify).",
        """
          eid-loadgen --api-key $KEY verify-token --id 001190791514 --total 2000
          EID_SESSION=$(eid signin --id 001190791514) eid-loadgen --api-key $KEY verify-token
        """,
    )
    who = p.add_mutually_exclusive_group()
    who.add_argument("--id", help="sign this citizen in to issue the tokens")
    who.add_argument(
        "--session",
        metavar="TOKEN",
        default=os.environ.get("EID_SESSION"),
        help="an existing citizen session token (env EID_SESSION)",
    )
    p.add_argument("--password", metavar="PW", help="the citizen's password, with --id")
    p.add_argument(
        "--attributes",
        default="full_name,birth_date,gender",
        help="attributes each share carries (default full_name,birth_date,gender)",
    )
    p.add_argument(
        "--issue-concurrency",
        type=positive_int,
        default=4,
        metavar="N",
        help="ShareViaQR calls in flight while issuing the tokens (default 4; issuing is "
        "setup, and many concurrent writers can time out on eid's embedded SQLite)",
    )

    p = workload(
        "verify-password",
        "Verify a citizen's ID number and password, --total times.",
        """
          eid-loadgen --api-key $KEY verify-password --id 001190791514 --total 200
          EID_PASSWORD=... eid-loadgen --api-key $KEY --concurrency 8 verify-password \\
              --id 001190791514
        """,
    )
    p.add_argument("--id", required=True, help="the citizen's 12-digit personal ID number")
    p.add_argument("--password", metavar="PW", help="the citizen's password")
    return parser


def channel_options() -> list[tuple[str, Any]]:
    # Channels to one target share a TCP connection unless each has its own
    # subchannel pool; --channels N must mean N connections.
    return [("grpc.use_local_subchannel_pool", 1)]


async def _verify_token(
    args: argparse.Namespace, clients: Sequence[AsyncEidClient], progress: bool
) -> dict[str, LoadResult]:
    if args.id:
        password = resolve_password(args.password)
        session = (await clients[0].sign_in(personal_id=args.id, password=password)).session_token
    elif args.session:
        session = args.session
    else:
        raise UsageError("verify-token needs a citizen: pass --id (and a password) or --session")
    attributes = [a.strip() for a in args.attributes.split(",") if a.strip()]
    tokens: list[str | None] = [None] * args.total

    async def issue(i: int) -> None:
        client = clients[i % len(clients)]
        share = await client.share_via_qr(
            attributes=attributes, ttl=SHARE_TTL, session_token=session
        )
        tokens[i] = share.token

    issued = await run_load(
        issue,
        total=args.total,
        concurrency=args.issue_concurrency,
        progress=progress,
        label=LABELS["share_via_qr"],
    )
    ready = [t for t in tokens if t is not None]

    async def redeem(i: int) -> None:
        response = await clients[i % len(clients)].redeem_share(ready[i])
        if not response.verified:
            raise NotVerifiedError

    verified = await run_load(
        redeem,
        total=len(ready),
        concurrency=args.concurrency,
        progress=progress,
        label=LABELS["verify_token"],
    )
    return {"share_via_qr": issued, "verify_token": verified}


async def _verify_password(
    args: argparse.Namespace, clients: Sequence[AsyncEidClient], progress: bool
) -> dict[str, LoadResult]:
    password = resolve_password(args.password)

    async def verify(i: int) -> None:
        response = await clients[i % len(clients)].verify_password(
            personal_id=args.id, password=password
        )
        if not response.verified:
            raise NotVerifiedError

    result = await run_load(
        verify,
        total=args.total,
        concurrency=args.concurrency,
        progress=progress,
        label=LABELS["verify_password"],
    )
    return {"verify_password": result}


async def _run(args: argparse.Namespace, progress: bool) -> dict[str, LoadResult]:
    if not args.api_key:
        raise UsageError("Verify is a relying-party call: pass --api-key or set EID_API_KEY")
    clients = [
        AsyncEidClient(
            args.target,
            api_key=args.api_key,
            timeout=args.timeout,
            options=channel_options(),
            tls=tls_from_args(args),
            # Every failure is counted, not hidden by a retry's extra latency.
            retry=RetryPolicy.off(),
        )
        for _ in range(args.channels)
    ]
    try:
        if args.workload == "verify-token":
            return await _verify_token(args, clients, progress)
        return await _verify_password(args, clients, progress)
    finally:
        for client in clients:
            await client.close()


def results_table(title: str, results: dict[str, LoadResult]) -> Table:
    """A rich table of results, one row per workload (keys are the row labels)."""
    table = Table(title=title, title_justify="left")
    table.add_column("workload")
    for column in ("calls", "errors", "seconds", "rps", "p50 ms", "p99 ms"):
        table.add_column(column, justify="right")
    for name, r in results.items():
        table.add_row(
            name,
            f"{r.count:,}",
            Text(f"{r.errors:,}", style="red" if r.errors else ""),
            f"{r.elapsed:.2f}",
            f"{r.rps:,.1f}",
            _ms(r.p50_ms),
            _ms(r.p99_ms),
        )
    return table


def _ms(value: float) -> str:
    return f"{value:,.2f}" if math.isfinite(value) else "-"


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 all calls ok, 1 some failed, 2 bad usage)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help and usage errors: return, don't exit, for callers
        return exc.code if isinstance(exc.code, int) else 2
    stdout, stderr = Console(highlight=False), Console(stderr=True, highlight=False)
    progress = not args.json and sys.stderr.isatty()
    try:
        results = asyncio.run(_run(args, progress))
    except UsageError as e:
        stderr.print(Text(f"error: {e}"))
        return 2
    except EidError as e:  # a setup call (sign-in) failed
        stderr.print(Text(f"error: {e}"))
        if e.code == grpc.StatusCode.UNAVAILABLE:
            stderr.print(Text(f"Is the eid server running at {args.target}?", style="dim"))
        return 1
    except KeyboardInterrupt:
        return 130
    if args.json:
        report = {
            "target": args.target,
            "concurrency": args.concurrency,
            "channels": args.channels,
            "results": {name: r.summary() for name, r in results.items()},
        }
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        title = f"eid-loadgen: {args.target}, concurrency {args.concurrency}"
        labelled = {LABELS.get(key, key): r for key, r in results.items()}
        stdout.print(results_table(title, labelled))
        for name, r in labelled.items():
            for kind, n in r.error_kinds.most_common():
                stderr.print(Text(f"{name}: {n:,} x {kind}", style="red"))
    return 1 if any(r.errors for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
