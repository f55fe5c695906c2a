"""`python -m bench.tracing` end to end with few calls: two real eid servers,
one exporting over OTLP to the bench's receiver. It checks the report's rows
and that spans were exported, not the ratios (they depend on the machine)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


def test_the_tracing_bench_compares_telemetry_off_and_on() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.tracing", "--rounds", "1", "--calls", "8"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = {
        line[:20].strip(): line[20:].split()
        for line in done.stdout.splitlines()
        if line.startswith(("ShareViaQR", "Verify"))
    }
    assert set(rows) == {"ShareViaQR", "Verify (token)", "Verify (password)"}
    for values in rows.values():
        off_rps, on_rps, ratio = (float(v) for v in values[:3])
        assert off_rps > 0 and on_rps > 0
        # The throughputs are printed rounded to whole calls a second.
        low, high = (on_rps - 0.5) / (off_rps + 0.5), (on_rps + 0.5) / (off_rps - 0.5)
        assert low - 0.005 <= ratio <= high + 0.005
    exported = re.search(r"(\d+) spans exported", done.stdout)
    assert exported is not None and int(exported.group(1)) > 50
