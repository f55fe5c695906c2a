"""make bench's password-flood row: health and Verify by QR token on the main
eid while SignIns with unknown ID numbers saturate its Argon2id threads.
Issue 15's target: both keep their p99 under 100 ms.

The flood is eid-loadgen, in a process of its own, at a fixed rate several
times what the server's hash threads can check (each refused or checked, none
queued: the admission limit); the two probes run one after the other at the
bench's concurrency while it lasts, on their own connections.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import argon2
from rich.console import Console
from rich.table import Table

from bench.plan import Plan
from bench.stack import CHANNEL_OPTIONS, EidServer
from bench.workloads import (
    ARGON2_MEMORY_KIB,
    ARGON2_PARALLELISM,
    ARGON2_TIME_COST,
    CALL_TIMEOUT_SECONDS,
    EidLoad,
)
from eid_client import AsyncEidClient, RetryPolicy
from eid_client.loadgen import LoadResult, channel_options, run_load

TARGET_P99_MS = 100.0
# The flood's rate, in multiples of what the server's hash threads check a second.
SATURATION = 3
# Valid ID numbers (Hà Nội, born in the 2000s) that name nobody.
UNKNOWN_IDS = [f"0012{n:08d}" for n in range(10_000_000, 10_050_000)]


def add_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-password-flood",
        dest="password_flood",
        action="store_false",
        help="skip the password-flood row (health and Verify(token) while SignIns "
        "with unknown ID numbers saturate the Argon2id threads)",
    )


def hash_capacity(workers: int) -> float:
    """Argon2id checks a second the server's threads manage (one per CPU per
    worker, as eid_service's hasher), from one timed check here."""
    hasher = argon2.PasswordHasher(
        time_cost=ARGON2_TIME_COST, memory_cost=ARGON2_MEMORY_KIB, parallelism=ARGON2_PARALLELISM
    )
    stored = hasher.hash(secrets.token_urlsafe(12))
    began = time.perf_counter()
    for _ in range(3):
        with contextlib.suppress(argon2.exceptions.VerifyMismatchError):
            hasher.verify(stored, "not the password")
    seconds = (time.perf_counter() - began) / 3
    return workers * (os.cpu_count() or 1) / seconds


def _p(result: LoadResult) -> dict[str, Any]:
    return {
        "calls": result.count,
        "errors": result.errors,
        "p50_ms": round(result.p50_ms, 3) if result.latencies else None,
        "p99_ms": round(result.p99_ms, 3) if result.latencies else None,
    }


async def measure(plan: Plan, server: EidServer, say: Any) -> dict[str, Any]:
    """The row, as the JSON report carries it under ``password_flood``."""
    calls = 60 if plan.quick else 600
    load = EidLoad(server, concurrency=plan.concurrency, channels=plan.channels, progress=False)
    health = [
        AsyncEidClient(
            server.address,
            timeout=CALL_TIMEOUT_SECONDS,
            # Each its own TCP connection, as the bench's other workloads.
            options=CHANNEL_OPTIONS + channel_options(),
            retry=RetryPolicy.off(),
        )
        for _ in range(plan.channels)
    ]
    try:
        tokens = await load.issue_tokens(calls)
        rate = round(SATURATION * hash_capacity(server.workers))
        seconds = 3 if plan.quick else 12
        say(f"{server.name}: password flood, {rate} SignIns/s with unknown ID numbers")
        with tempfile.TemporaryDirectory(prefix="eid-flood-") as scratch:
            unknown = Path(scratch) / "unknown.csv"
            unknown.write_text("personal_id\n" + "\n".join(UNKNOWN_IDS) + "\n", encoding="utf-8")
            flood = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).with_name("eid-loadgen")),
                *("--target", server.address, "--json", "--timeout", "10"),
                *("--rps", str(rate), "--duration", f"{seconds}s"),
                *("sign-in", "--citizens", str(unknown)),
                stdout=asyncio.subprocess.PIPE,
                env={**os.environ, "EID_PASSWORD": "not the password"},
            )
            try:
                await asyncio.sleep(1)  # the hash threads fill up
                checks = await run_load(
                    lambda i: health[i % len(health)].health(),
                    total=calls,
                    concurrency=plan.concurrency,
                    label="health (flood)",
                )
                redeemed = await load.verify_token(tokens)
                lasted = flood.returncode is None
            finally:
                output, _ = await flood.communicate()
    finally:
        await load.close()
        for client in health:
            await client.close()
    report = json.loads(output)
    p99s = [r.p99_ms for r in (checks, redeemed) if r.latencies]
    met = lasted and len(p99s) == 2 and max(p99s) <= TARGET_P99_MS
    return {
        "flood_rps": rate,
        "flood_seconds": seconds,
        "flood_answers": {e["reason"] or e["status"]: e["count"] for e in report["errors"]},
        "flood_outlasted_probes": lasted,
        "health": _p(checks),
        "verify_token": _p(redeemed),
        "target_p99_ms": TARGET_P99_MS,
        "verdict": "PASS" if met else "FAIL",
    }


def errors(row: dict[str, Any] | None) -> int:
    """The probes' failed calls (the flood's are its point)."""
    if row is None:
        return 0
    return int(row["health"]["errors"] + row["verify_token"]["errors"])


def print_row(row: dict[str, Any], console: Console) -> None:
    answers = ", ".join(f"{k} {v}" for k, v in row["flood_answers"].items())
    table = Table(
        title=f"password flood: {row['flood_rps']} SignIns/s with unknown ID numbers ({answers})",
        title_justify="left",
    )
    for column in ("workload", "calls", "errors", "p50 ms", "p99 ms", "target", "verdict"):
        table.add_column(column)
    for key, label in (("health", "health"), ("verify_token", "Verify (token)")):
        probe = row[key]
        table.add_row(
            label,
            str(probe["calls"]),
            str(probe["errors"]),
            f"{probe['p50_ms']}",
            f"{probe['p99_ms']}",
            f"p99 <= {row['target_p99_ms']:g} ms",
            # Each probe's own verdict; the JSON's "verdict" needs both.
            "PASS"
            if row["flood_outlasted_probes"] and probe["p99_ms"] <= row["target_p99_ms"]
            else "FAIL",
        )
    console.print(table)
    if not row["flood_outlasted_probes"]:
        console.print("the flood ended before the probes did: the verdict is FAIL")
