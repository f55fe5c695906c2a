"""make bench: eid next to the ceilings it is built on, measured in one run.

Starts, as separate processes on loopback: a bare gRPC echo server; two bare
durable write servers (one Ed25519 verification, a conditional UPDATE, an audit
insert and a durable SQLite commit per call; one commits each call, the other
commits in groups); a fresh eid (temporary directory, embedded SQLite, like
`make run`); and a second eid with twice as many workers on a database of its
own. Then, over several rounds and with the same load generator and
concurrency, it measures the echo, both durable writes, eid ShareViaQR, Verify
by QR token (on both eids), Verify by password, by one-time code and by
demographic claim, and Register, and the bare
Argon2id and Ed25519 verifications under them, and the SDK's offline
credential check beside the bare Ed25519 one. It prints the medians across
rounds, the ratios with their targets and a PASS/FAIL verdict each, and the
resident memory of every eid worker afterwards, and writes everything as JSON
(default var/bench/latest.json).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.text import Text

from bench import password_flood, registry_scale
from bench.durable_write_server import METHOD as DURABLE_WRITE_METHOD
from bench.echo_server import METHOD as ECHO_METHOD
from bench.plan import DEFAULT_CALLS, POSTGRES_DURABLE_WRITE_THREADS, WORKLOAD_KEYS, Plan
from bench.report import Measured, build_report, print_report, targets_help
from bench.stack import (
    BenchError,
    EidServer,
    ProcessSet,
    eid_memory,
    filesystem_type,
    log_tail,
    scratch_postgres,
    start_durable_write_server,
    start_echo_server,
    start_eid_server,
)
from bench.workloads import (
    BareCrypto,
    EidLoad,
    RawMethod,
    Signer,
    evenly_spread,
    registrable_citizens,
)
from eid_client.cli_args import positive_int
from eid_client.errors import EidError
from eid_client.loadgen import LoadResult

DEFAULT_OUT = Path("var/bench/latest.json")
# The servers' files (SQLite included) go in a temporary folder here, on the disk
# `make run` keeps var/ on: /tmp may be a tmpfs, where fsync costs nothing.
SCRATCH_PARENT = Path("var/bench")

_EPILOG = f"""\
examples:
  make bench                                  the default run (about 8 minutes on 2 cores)
  .venv/bin/python -m bench --no-registry     the same without the registry rows (about 6 minutes)
  .venv/bin/python -m bench --quick           a smoke test in well under a minute
  .venv/bin/python -m bench --postgres        eid on a scratch database of the local PostgreSQL
  .venv/bin/python -m bench --postgres postgresql://me@db.internal:5432/postgres
  .venv/bin/python -m bench --rounds 3 --calls 1000 --concurrency 64
  .venv/bin/python -m bench --out /tmp/bench.json && jq '.ratios, .verdicts' /tmp/bench.json

targets (ratios of median rps; p99 is the numerator's, median across rounds):
{targets_help()}
A ratio whose workloads had failed calls is a FAIL. The verdicts are printed
and stored; they do not change the exit status, which is 1 only when calls
failed or the bench could not run. The bare durable writes the targets use run
on SQLite (their own files), also with --postgres; with --postgres a third one
writes the same rows to PostgreSQL (a scratch database; a transaction per call
on as many writer threads as eid uses there), for the informational
verify_qr_vs_durable_write_postgres. The servers' files, SQLite included, go in
a temporary folder under var/bench/ (on the disk var/ is on: /tmp may be a
tmpfs, where a commit costs no fsync).

Calls per round, from --calls N: 10*N echo; 2*N of each durable write; N
ShareViaQR (measured, at --concurrency; the 8 enrolled citizens in turn), then N
Verify(token) redeeming exactly those tokens (issuing is not part of the Verify
timing); N Verify(token) on the second eid (its tokens issued beforehand, not
timed); N/4 Verify(password) over 8 citizens and N/4 bare Argon2id (one thread
per CPU, like eid's hasher), at least 4; N Register (each a distinct citizen the
registry holds: the bench runs `eid-server load-demo --synthetic M` with M
enough for every round and the warm-up); 20*N Ed25519; 20*N offline
verifications (the SDK's verify_offline of a basic-scope offline credential, one
thread, next to the bare Ed25519 check).
Rounds interleave the workloads, so a slow spell of the machine touches all of
them. The gRPC calls go round-robin over --channels connections per server
(eid's workers share one port, and the kernel spreads connections, not calls,
over them, at random: the bench reconnects until they are spread evenly enough).

After the rounds, the password-flood row (bench/password_flood.py): health and
Verify(token) on the main eid while eid-loadgen floods it with SignIns of unknown
ID numbers at three times what its Argon2id threads check; target p99 <= 100 ms
for both (--no-password-flood skips it).

The durable write server also runs on its own:
  .venv/bin/python bench/durable_write_server.py --port 50101 --public-key HEX --dir /tmp/dw
  .venv/bin/python bench/durable_write_server.py --port 50102 --public-key HEX \
      --postgres postgresql://postgres@127.0.0.1:5432/scratch --threads 4
"""


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
        help="calls in flight (default 32, as the targets assume)",
    )
    parser.add_argument(
        "--calls",
        type=positive_int,
        metavar="N",
        help="Verify(token) calls per round; the others scale from it "
        f"(default {DEFAULT_CALLS}, quick 30)",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        metavar="N",
        help="worker processes of the main eid (default 1, as the targets assume); "
        "the second eid runs 2*N",
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
        help="store eid in scratch PostgreSQL databases instead of SQLite "
        "(default admin DSN postgresql://postgres@127.0.0.1:5432/postgres)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        metavar="PATH",
        help=f"JSON results file (default {DEFAULT_OUT})",
    )
    password_flood.add_argument(parser)
    registry_scale.add_arguments(parser)
    return parser


@dataclass(frozen=True)
class Servers:
    echo: str
    durable_write: str
    durable_write_group: str
    durable_write_postgres: str | None  # with --postgres
    eid: EidServer
    eid_scaled: EidServer


async def measure(plan: Plan, servers: Servers, signer: Signer, say: _Say) -> Measured:
    progress = sys.stderr.isatty()
    labels = plan.labels()
    measured = Measured({key: [] for key in WORKLOAD_KEYS}, {}, [])
    results = measured.results
    async with contextlib.AsyncExitStack() as stack:

        def raw(address: str, method: str, key: str) -> RawMethod:
            load = RawMethod(
                address,
                method,
                label=labels[key],
                channels=plan.channels,
                concurrency=plan.concurrency,
            )
            stack.push_async_callback(load.close)
            return load

        def eid_load(server: EidServer, channels: int) -> EidLoad:
            load = EidLoad(
                server, concurrency=plan.concurrency, channels=channels, progress=progress
            )
            stack.push_async_callback(load.close)
            return load

        echo = raw(servers.echo, ECHO_METHOD, "echo")
        durable = raw(servers.durable_write, DURABLE_WRITE_METHOD, "durable_write")
        grouped = raw(servers.durable_write_group, DURABLE_WRITE_METHOD, "durable_write_group")
        ceilings = [("durable_write", durable), ("durable_write_group", grouped)]
        if servers.durable_write_postgres is not None:
            on_postgres = raw(
                servers.durable_write_postgres, DURABLE_WRITE_METHOD, "durable_write_postgres"
            )
            ceilings.append(("durable_write_postgres", on_postgres))
        eid = eid_load(servers.eid, plan.channels)
        scaled = eid_load(servers.eid_scaled, plan.scaled_channels)

        for load in (eid, scaled):
            say(f"{load.server.name}: registering and activating the Verify citizens")
            await load.enroll()
            counts = await load.spread_connections()
            measured.connections[load.server.name] = counts
            if counts is not None and load.server.workers > 1 and not evenly_spread(counts):
                note = f"{load.server.name}: connections unevenly spread over workers: {counts}"
                measured.notes.append(note)
                say(note)
        # The signed part of a real token (what eid's Ed25519 check covers), and the
        # whole token as the echo payload: the same sizes as eid's calls.
        signed_part = eid.sample_token.rsplit(".", 1)[0].encode("ascii")
        payload = eid.sample_token.encode("ascii")
        crypto = BareCrypto(signed_part, signer, progress=progress)
        stack.callback(crypto.close)
        citizens = registrable_citizens(plan.synthetic_citizens)
        say(f"{eid.server.name}: registering and activating the one-time-code citizens")
        await eid.enroll_otp(citizens[-plan.otp_citizens :])
        signed = 0

        def durable_requests(count: int) -> list[bytes]:
            nonlocal signed
            signed += count
            return signer.signed_requests(signed_part, count, start=signed - count)

        async def register(count: int) -> LoadResult:
            start = eid.registered
            if start + count > len(citizens):
                raise BenchError("the bench ran out of registrable citizens")
            before = await asyncio.to_thread(eid.outbox_messages)
            result = await eid.register(citizens[start : start + count])
            # Let the dispatcher send the activation SMS before the next measurement.
            if not await eid.outbox_drained(before + result.ok):
                note = f"{eid.server.name}: outbox not drained after Register"
                if note not in measured.notes:
                    measured.notes.append(note)
                    say(note)
            return result

        async def round_(c: dict[str, int], record: bool) -> None:
            def keep(key: str, result: LoadResult) -> None:
                if record:
                    results[key].append(result)

            keep("echo", await echo.run([payload] * c["echo"], echoed=True, progress=progress))
            for key, load in ceilings:
                keep(key, await load.run(durable_requests(c[key]), progress=progress))
            shared, tokens = await eid.share_via_qr(c["share_via_qr"])
            keep("share_via_qr", shared)
            keep("verify_token", await eid.verify_token(tokens))
            scaled_tokens = await scaled.issue_tokens(c["verify_token_2_workers"])
            keep("verify_token_2_workers", await scaled.verify_token(scaled_tokens))
            keep("verify_password", await eid.verify_password(c["verify_password"]))
            # Next to what it is divided by: the machine's speed drifts within a round.
            keep("argon2id", await crypto.argon2id_verify(c["argon2id"]))
            keep("verify_otp", await eid.verify_otp(await eid.otp_codes(c["verify_otp"])))
            keep("verify_demographic", await eid.verify_demographic(c["verify_demographic"]))
            keep("register", await register(c["register"]))
            keep("ed25519", crypto.ed25519_verify(c["ed25519"]))
            keep("offline_verify", crypto.offline_verify(c["offline_verify"]))

        say("warming up")
        await round_(plan.warmup, record=False)
        for r in range(1, plan.rounds + 1):
            say(f"round {r}/{plan.rounds}")
            await round_(plan.calls, record=True)
    return measured


class _Say:
    """Status lines on stderr, so stdout holds only the report."""

    def __init__(self) -> None:
        self._console = Console(stderr=True, highlight=False)
        self._started = time.monotonic()

    def __call__(self, text: str) -> None:
        elapsed = time.monotonic() - self._started
        self._console.print(Text(f"[{elapsed:6.1f}s] {text}", style="dim"))


def _raise_interrupt(_signum: int, _frame: FrameType | None) -> None:
    # SIGTERM takes the Ctrl-C path, so the servers are stopped the same way.
    raise KeyboardInterrupt


def _eid_logs(workdir: Path) -> str:
    tails = [
        f"--- {log.relative_to(workdir)} ---\n{log_tail(log, 20)}"
        for log in sorted(workdir.glob("*/eid-server.log"))
    ]
    return "\n".join(tails)


def run(
    plan: Plan, out: Path, say: _Say, *, flood: bool = True, registry: int | None = None
) -> int:
    started = datetime.datetime.now(datetime.UTC)
    with contextlib.ExitStack() as stack:
        SCRATCH_PARENT.mkdir(parents=True, exist_ok=True)
        workdir = Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="eid-", dir=SCRATCH_PARENT))
        ).resolve()
        fs = filesystem_type(workdir)
        databases: list[str | None] = [None, None, None]
        if plan.postgres:
            # eid, the second eid, the bare durable write.
            databases = [stack.enter_context(scratch_postgres(plan.postgres)) for _ in range(3)]
        procs = stack.enter_context(ProcessSet())
        signer = Signer()
        store = "PostgreSQL" if plan.postgres else "SQLite"
        say(f"starting the echo and durable write servers in {workdir}")
        echo = start_echo_server(procs, workdir)
        probe = signer.signed_requests(b"probe", 1)[0]
        durable = [
            start_durable_write_server(
                procs, workdir, public_key=signer.public_key_hex, probe=probe, group_commit=group
            )
            for group in (False, True)
        ]
        durable_postgres = None
        if databases[2] is not None:
            durable_postgres = start_durable_write_server(
                procs,
                workdir,
                public_key=signer.public_key_hex,
                probe=probe,
                postgres=databases[2],
                threads=POSTGRES_DURABLE_WRITE_THREADS,
            )
        say(
            f"starting eid ({plan.workers} worker(s), {store}, "
            f"{plan.synthetic_citizens} synthetic citizens to register)"
        )
        eid = start_eid_server(
            procs,
            workdir / "eid",
            workers=plan.workers,
            database_url=databases[0],
            synthetic=plan.synthetic_citizens,
        )
        say(f"starting eid ({plan.scaled_workers} workers, {store})")
        eid_scaled = start_eid_server(
            procs, workdir / "eid-scaled", workers=plan.scaled_workers, database_url=databases[1]
        )
        servers = Servers(echo, durable[0], durable[1], durable_postgres, eid, eid_scaled)
        try:
            measured = asyncio.run(measure(plan, servers, signer, say))
            flooded = asyncio.run(password_flood.measure(plan, eid, say)) if flood else None
        except (EidError, BenchError) as e:
            procs.check_alive()  # a dead server explains more than the failed call
            raise BenchError(f"{e}\n{_eid_logs(workdir)}") from e
        procs.check_alive()
        memory = {server.name: eid_memory(server) for server in (eid, eid_scaled)}
        say("stopping the servers")
    registry_rows = None
    if registry is not None:
        # After the servers: the registry rows use every CPU themselves.
        with tempfile.TemporaryDirectory(prefix="eid-registry-", dir=SCRATCH_PARENT) as scratch:
            registry_rows = registry_scale.measure(registry, Path(scratch).resolve(), say)
    if fs in {"tmpfs", "ramfs"}:
        measured.notes.append(f"the SQLite files are on {fs}: commits cost no fsync")
    report = build_report(plan, measured, memory, started, fs)
    if flooded is not None:
        report["password_flood"] = flooded
    if registry_rows is not None:
        report["registry"] = registry_rows
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    # Piped or captured, rich would wrap the per-round table at 80 columns.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    print_report(report, console)
    if flooded is not None:
        password_flood.print_row(flooded, console)
    if registry_rows is not None:
        registry_scale.print_rows(registry_rows, console)
    say(f"results written to {out}")
    failed = {k: w["errors"] for k, w in report["workloads"].items() if w["errors"]}
    if password_flood.errors(flooded):
        failed["password_flood"] = password_flood.errors(flooded)
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
        registry = registry_scale.count_for(args) if args.registry else None
        return run(plan, args.out, say, flood=args.password_flood, registry=registry)
    except BenchError as e:
        Console(stderr=True, highlight=False).print(Text(f"bench failed: {e}", style="red"))
        return 1
    except KeyboardInterrupt:
        say("interrupted; servers stopped")
        return 130


if __name__ == "__main__":
    sys.exit(main())
