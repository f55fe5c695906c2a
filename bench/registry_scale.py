"""make bench's registry rows (issue 17): a registry of a million people made
and loaded into SQLite, and look-ups in it against a registry of a thousand.

As an operator runs them, each a process of its own on the disk var/ is on:
`eid-server registry generate --count N --out FILE` (the file alone),
`eid-server registry import FILE` into an empty database, and
`eid-server registry generate --count N` straight into another. Targets: the
import and the straight generate each under 60 s for a million people (a
rate of at least 16,667 people/s at any other count). The imported database
then serves the look-ups: `person()` and `find()` of people drawn at random,
one at a time through the unit of work as the service calls them, against
the same on a registry of a thousand; target: the million's median within
1.5x of the thousand's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.stack import BenchError
from eid_service.registry_tools.generator import CHUNK_SIZE, chunks, generate_chunk
from eid_service.security.field_cipher import FieldCipher
from eid_service.security.keyed_hash import KeyedHasher
from eid_service.security.keys import generate_key_ring, load_key_ring, save_key_ring
from eid_service.store.migrate import upgrade
from eid_service.store.protection import DataProtection
from eid_service.store.uow import SqlUnitOfWork
from eid_service.use_cases.ports import Repositories

MILLION = 1_000_000
TARGET_SECONDS_PER_MILLION = 60.0
TARGET_RATE = MILLION / TARGET_SECONDS_PER_MILLION
TARGET_LOOKUP_RATIO = 1.5
SMALL = 1_000
SEED = 17
AS_OF = date(2026, 11, 24)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--registry-count",
        type=int,
        metavar="N",
        help="people in the registry rows (default 1,000,000; --quick 3,000)",
    )
    parser.add_argument(
        "--no-registry",
        dest="registry",
        action="store_false",
        help="skip the registry rows (generate and import a million people, look-ups)",
    )


def count_for(args: argparse.Namespace) -> int:
    if args.registry_count is not None:
        return int(args.registry_count)
    return 3_000 if args.quick else MILLION


def _server(workdir: Path, database: Path, *args: str) -> float:
    """Runs `eid-server ARGS` on `database`; its wall time in seconds."""
    env = {
        **os.environ,
        "EID_KEYS_FILE": str(workdir / "keys.json"),
        "EID_DATABASE_URL": f"sqlite:///{database}",
    }
    started = time.perf_counter()
    done = subprocess.run(
        [str(Path(sys.executable).with_name("eid-server")), *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise BenchError(f"eid-server {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return seconds


def _sample_ids(count: int, picks: int) -> list[str]:
    """ID numbers of `picks` people of the generated registry, from a few of its chunks."""
    rng = random.Random(count)
    chosen = rng.sample(range(chunks(count)), min(4, chunks(count)))
    ids = [
        p.demographics.personal_id for c in chosen for p in generate_chunk(SEED, c, count, AS_OF)
    ]
    rng.shuffle(ids)
    return ids[:picks]


def _latencies(
    database: Path, keys: Path, ids: list[str], lookup: Callable[[Repositories, str], Any]
) -> list[float]:
    """Seconds per look-up, one at a time through the unit of work (warmed up first)."""
    ring = load_key_ring(keys)
    uow = SqlUnitOfWork(
        f"sqlite:///{database}", DataProtection(FieldCipher(ring), KeyedHasher(ring.hmac_key))
    )

    def of(pid: str) -> Callable[[Repositories], Any]:
        return lambda r: lookup(r, pid)

    async def run() -> list[float]:
        for pid in ids[:200]:
            await uow.read(of(pid))
        taken = []
        for pid in ids:
            started = time.perf_counter()
            found = await uow.read(of(pid))
            taken.append(time.perf_counter() - started)
            if found is None:
                raise BenchError("a generated person was not found")
        return taken

    try:
        return asyncio.run(run())
    finally:
        uow.close()


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def measure(count: int, scratch: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """The rows, as the JSON report carries them under ``registry``."""
    save_key_ring(generate_key_ring(), scratch / "keys.json")
    big, direct, small = scratch / "big.db", scratch / "direct.db", scratch / "small.db"
    for database in (big, direct, small):
        upgrade(f"sqlite:///{database}")
    out = scratch / "registry.jsonl"
    common = ("--seed", str(SEED), "--as-of", AS_OF.isoformat())

    say(f"registry: generating {count:,} people into {out.name}")
    to_file = _server(scratch, big, "registry", "generate", "--count", str(count), *common,
                      "--out", str(out))  # fmt: skip
    size = out.stat().st_size
    say(f"registry: importing {out.name} ({size / 1e9:.2f} GB) into SQLite")
    imported = _server(scratch, big, "registry", "import", str(out))
    out.unlink()
    say(f"registry: generating {count:,} people straight into SQLite")
    straight = _server(scratch, direct, "registry", "generate", "--count", str(count), *common)
    db_bytes = direct.stat().st_size
    for suffix in ("", "-wal", "-shm"):
        Path(f"{direct}{suffix}").unlink(missing_ok=True)
    _server(scratch, small, "registry", "generate", "--count", str(SMALL), *common)

    picks = 1_000 if count < MILLION else 3_000
    say(f"registry: {picks:,} look-ups each at {SMALL:,} and at {count:,} people")
    large_ids = _sample_ids(count, picks)
    small_ids = _sample_ids(SMALL, SMALL)
    lookups: dict[str, Any] = {}
    for name, lookup in (
        ("person", lambda r, pid: r.registry.person(pid)),
        ("find", lambda r, pid: r.registry.find(pid)),
    ):
        at_small = _latencies(small, scratch / "keys.json", small_ids * (picks // SMALL), lookup)
        at_large = _latencies(big, scratch / "keys.json", large_ids, lookup)
        ratio = statistics.median(at_large) / statistics.median(at_small)
        lookups[name] = {
            "small": {"p50_ms": _ms(at_small, 0.5), "p99_ms": _ms(at_small, 0.99)},
            "large": {"p50_ms": _ms(at_large, 0.5), "p99_ms": _ms(at_large, 0.99)},
            "ratio_p50": round(ratio, 3),
            "verdict": "PASS" if ratio <= TARGET_LOOKUP_RATIO else "FAIL",
        }

    def row(seconds: float) -> dict[str, Any]:
        rate = count / seconds
        return {
            "seconds": round(seconds, 1),
            "people_per_second": round(rate),
            "verdict": "PASS" if rate >= TARGET_RATE else "FAIL",
        }

    return {
        "count": count,
        "chunk_size": CHUNK_SIZE,
        "cpus": os.cpu_count(),
        "file_bytes": size,
        "database_bytes": db_bytes,
        "generate_file": {
            "seconds": round(to_file, 1),
            "people_per_second": round(count / to_file),
        },
        "import": row(imported),
        "generate_into_sqlite": row(straight),
        "target_seconds_per_million": TARGET_SECONDS_PER_MILLION,
        "lookups": lookups,
        "target_lookup_ratio": TARGET_LOOKUP_RATIO,
    }


def print_rows(row: dict[str, Any], console: Console) -> None:
    count = row["count"]
    table = Table(
        title=f"registry: {count:,} people ({row['cpus']} CPUs; file"
        f" {row['file_bytes'] / 1e9:.2f} GB, database {row['database_bytes'] / 1e9:.2f} GB)",
        title_justify="left",
    )
    for column in ("command", "seconds", "people/s", "target", "verdict"):
        table.add_column(column)
    target = f">= {TARGET_RATE:,.0f}/s ({TARGET_SECONDS_PER_MILLION:g} s per million)"
    gen = row["generate_file"]
    table.add_row(
        "registry generate --out FILE", f"{gen['seconds']}", f"{gen['people_per_second']:,}", "", ""
    )
    for key, label in (
        ("import", "registry import FILE (into SQLite)"),
        ("generate_into_sqlite", "registry generate (straight into SQLite)"),
    ):
        r = row[key]
        table.add_row(label, f"{r['seconds']}", f"{r['people_per_second']:,}", target, r["verdict"])
    console.print(table)
    lookups = Table(
        title=f"registry look-ups: {SMALL:,} vs {count:,} people (p50 / p99 ms, one at a time)",
        title_justify="left",
    )
    for column in ("look-up", f"{SMALL:,}", f"{count:,}", "ratio p50", "target", "verdict"):
        lookups.add_column(column)
    for name, r in row["lookups"].items():
        lookups.add_row(
            f"{name}()",
            f"{r['small']['p50_ms']} / {r['small']['p99_ms']}",
            f"{r['large']['p50_ms']} / {r['large']['p99_ms']}",
            f"{r['ratio_p50']}",
            f"<= {row['target_lookup_ratio']:g}",
            r["verdict"],
        )
    console.print(lookups)
