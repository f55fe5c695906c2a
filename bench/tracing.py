"""make bench-tracing: what telemetry costs eid.

Starts two fresh eids side by side (one worker each, embedded SQLite, as the
main bench's first eid): one as deployed by default, telemetry off; one with
traces and metrics exported over OTLP/gRPC, with the SDK's default batching,
to a receiver in this process (tools/otlp_receiver.py) that only counts
(every call traced, or the share --sample says). Then
it measures ShareViaQR, Verify by QR token and Verify by password on each,
alternating between them round after round (so a busy machine's drift hits
both alike), and prints each one's median throughput and latencies across
rounds and the ratio of on to off.

The cost of telemetry off against a server without it cannot be measured
this way (it is one None check per call); see README, Operations: telemetry.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bench.stack import BenchError, ProcessSet, start_eid_server
from bench.workloads import EidLoad
from eid_client.cli_args import positive_int
from eid_client.loadgen import LoadResult
from tools.otlp_receiver import OtlpReceiver

WORKLOADS = ("ShareViaQR", "Verify (token)", "Verify (password)")
# As the main bench: on the disk var/ is on (a tmpfs would make commits free).
SCRATCH_PARENT = Path("var/bench")


@dataclass
class Side:
    name: str
    load: EidLoad
    results: dict[str, list[LoadResult]] = field(default_factory=dict)

    async def round(self, calls: int, record: bool) -> None:
        shared, tokens = await self.load.share_via_qr(calls)
        measured = {
            "ShareViaQR": shared,
            "Verify (token)": await self.load.verify_token(tokens),
            "Verify (password)": await self.load.verify_password(max(4, calls // 4)),
        }
        for key, result in measured.items():
            if result.errors:
                raise BenchError(f"{self.name}: {key} failed: {dict(result.error_kinds)}")
            if record:
                self.results.setdefault(key, []).append(result)

    def median(self, key: str, of: str) -> float:
        runs = self.results[key]
        if of == "rps":
            return statistics.median(r.rps for r in runs)
        return statistics.median(r.percentile_ms(float(of)) for r in runs)


async def _measure(sides: list[Side], rounds: int, calls: int) -> None:
    for side in sides:
        print(f"{side.name}: enrolling the citizens", file=sys.stderr)
        await side.load.enroll()
    for side in sides:
        await side.round(max(8, calls // 5), record=False)  # warm-up
    for number in range(1, rounds + 1):
        print(f"round {number}/{rounds}", file=sys.stderr)
        # Alternate which goes first: neither always runs on a warmer machine.
        for side in sides if number % 2 else list(reversed(sides)):
            await side.round(calls, record=True)


def _report(off: Side, on: Side, spans: int) -> None:
    header = f"{'':20} {'off rps':>9} {'on rps':>9} {'on/off':>7}"
    header += f" {'off p50':>8} {'on p50':>8} {'off p99':>8} {'on p99':>8}  (ms)"
    print(header)
    for key in WORKLOADS:
        off_rps, on_rps = off.median(key, "rps"), on.median(key, "rps")
        print(
            f"{key:20} {off_rps:9.0f} {on_rps:9.0f} {on_rps / off_rps:7.2f}"
            f" {off.median(key, '50'):8.1f} {on.median(key, '50'):8.1f}"
            f" {off.median(key, '99'):8.1f} {on.median(key, '99'):8.1f}"
        )
    print(f"(medians of {len(off.results[WORKLOADS[0]])} rounds; {spans} spans exported)")


def run(rounds: int, calls: int, concurrency: int, channels: int, sample: float) -> int:
    SCRATCH_PARENT.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="eid-tracing-", dir=SCRATCH_PARENT) as scratch,
        OtlpReceiver(keep=False) as receiver,
        ProcessSet() as procs,
    ):
        workdir = Path(scratch).resolve()
        traced = {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
        }
        if sample < 1:
            traced["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
            traced["OTEL_TRACES_SAMPLER_ARG"] = str(sample)
        print(f"starting two eids in {workdir}", file=sys.stderr)
        servers = [
            start_eid_server(procs, workdir / "off", workers=1),
            start_eid_server(procs, workdir / "on", workers=1, settings=traced),
        ]

        async def measure() -> tuple[Side, Side]:
            sides = [
                Side(name, EidLoad(s, concurrency=concurrency, channels=channels, progress=False))
                for name, s in zip(("telemetry off", "telemetry on"), servers, strict=True)
            ]
            try:
                await _measure(sides, rounds, calls)
            finally:
                for side in sides:
                    await side.load.close()
            return sides[0], sides[1]

        off, on = asyncio.run(measure())
        procs.check_alive()
        procs.stop_all()  # the traced eid exports what it still holds
        _report(off, on, receiver.span_count)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tracing", description=__doc__)
    parser.add_argument("--rounds", type=positive_int, default=5, metavar="N")
    parser.add_argument("--calls", type=positive_int, default=300, metavar="N")
    parser.add_argument("--concurrency", type=positive_int, default=32, metavar="N")
    parser.add_argument("--channels", type=positive_int, default=4, metavar="N")
    parser.add_argument(
        "--sample",
        type=float,
        default=1.0,
        metavar="RATIO",
        help="trace this share of calls (OTEL_TRACES_SAMPLER=parentbased_traceidratio); "
        "default 1: every call",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.sample <= 1:
        parser.error("--sample must be between 0 and 1")
    try:
        return run(args.rounds, args.calls, args.concurrency, args.channels, args.sample)
    except BenchError as e:
        print(f"bench failed: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
