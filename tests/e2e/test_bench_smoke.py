"""`python -m bench --quick` end to end: real echo and eid server processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXPECTED_WORKLOADS = {"echo", "verify_token", "verify_password", "argon2id", "ed25519"}


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_quick_bench_writes_positive_figures_and_ratios(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--rounds", "1", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    workloads = report["workloads"]
    assert set(workloads) >= EXPECTED_WORKLOADS
    for key, workload in workloads.items():
        assert workload["median"]["rps"] > 0, key
        assert workload["errors"] == 0, key
        assert len(workload["rounds"]) == 1, key
    assert report["ratios"]["verify_token_vs_echo"] > 0
    assert report["ratios"]["verify_password_vs_argon2id"] > 0
    assert "eid Verify (token)" in done.stdout
