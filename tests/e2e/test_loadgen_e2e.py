"""`eid-loadgen` as a capacity tester runs it, against a real eid server (set up
by the bench's stack: a party with limits a load test does not hit, and the
bench's enrolled citizens): the JSON report, the chart, errors by reason, the
fixed rate, and several processes merged exactly."""

from __future__ import annotations

import asyncio
import base64
import csv
import json
import os
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bench.stack import ProcessSet, start_eid_server
from bench.workloads import PASSWORD, EidLoad, _enrolled_phone, registrable_citizens
from eid_client.loadgen import main
from eid_service.demo import portrait_capture
from eid_service.domain.citizen import Demographics

LOADGEN = Path(sys.executable).with_name("eid-loadgen")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REPORT_KEYS = {
    "schema",
    "workload",
    "label",
    "rpc",
    "target",
    "mode",
    "rps_target",
    "concurrency",
    "processes",
    "channels",
    "calls_target",
    "duration_s",
    "exhausted",
    "interrupted",
    "warmup",
    "prepared",
    "summary",
    "errors",
    "histogram",
    "timeline_width_s",
    "timeline",
    "schedule",
}
REGISTRABLE = 5  # registry citizens without an account, for Register
WRONG_PASSWORD_KINDS = {("OK", "NOT_VERIFIED"), ("RESOURCE_EXHAUSTED", "TOO_MANY_FAILED_ATTEMPTS")}


@dataclass(frozen=True)
class Server:
    address: str
    api_key: str
    ids: list[str]  # ACTIVE citizens whose password is PASSWORD
    outbox: Path
    birth_dates: list[str]  # theirs, YYYY-MM-DD


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("loadgen")
    with ProcessSet() as procs:
        eid = start_eid_server(procs, workdir / "eid", workers=1, synthetic=REGISTRABLE)

        async def enroll() -> list[Demographics]:
            # Its channels belong to the loop that makes them.
            load = EidLoad(eid, concurrency=4, channels=1, progress=False)
            try:
                await load.enroll()
            finally:
                await load.close()
            return load.citizens

        citizens = asyncio.run(enroll())
        ids = [c.personal_id for c in citizens]
        born = [c.birth_date.isoformat() for c in citizens]
        yield Server(eid.address, eid.api_key, ids, eid.outbox, born)


def loadgen(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LOADGEN), "--target", server.address, "--api-key", server.api_key, *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def report_of(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(done.stdout)
    return report


@pytest.mark.e2e
def test_two_processes_report_json_and_chart(server: Server, tmp_path: Path) -> None:
    chart = tmp_path / "load.png"
    done = loadgen(
        server,
        *("--json", "--chart", str(chart), "--processes", "2", "--concurrency", "8"),
        *("--total", "120", "--warmup", "20"),
        *("verify-token", "--id", server.ids[0], "--password", PASSWORD),
    )

    assert done.returncode == 0, done.stderr
    report = report_of(done)
    assert set(report) == REPORT_KEYS
    assert (report["schema"], report["workload"], report["mode"]) == (
        "eid-loadgen/1",
        "verify-token",
        "closed",
    )
    s = report["summary"]
    # Merged from two processes, exactly: every measured call once.
    assert (s["count"], s["ok"], s["errors"], report["errors"]) == (120, 120, 0, [])
    assert report["processes"] == 2
    assert report["schedule"] is None  # a closed loop has no rate to keep
    assert report["warmup"]["calls"] == 20
    assert report["prepared"]["items"] == 140  # one token per call, warm-up included
    assert sum(b["count"] for b in report["histogram"]) == 120
    assert sum(w["ok"] for w in report["timeline"]) == 120
    assert s["min_ms"] <= s["p50_ms"] <= s["p90_ms"] <= s["p95_ms"] <= s["p99_ms"] <= s["max_ms"]
    assert s["rps"] > 0

    png = chart.read_bytes()
    assert png.startswith(PNG_SIGNATURE)
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk comes first
    assert (width, height) == (1000, 650)
    assert 10_000 < len(png) < 2_000_000


@pytest.mark.e2e
def test_a_fixed_rate_sends_rate_times_duration_calls(server: Server) -> None:
    done = loadgen(
        server, "--json", "--rps", "50", "--duration", "2s", "--processes", "2", "health"
    )

    assert done.returncode == 0, done.stderr
    report = report_of(done)
    assert (report["mode"], report["rps_target"]) == ("open", 50)
    # Due every 20 ms for 2 s: 100 calls, whatever the server's speed.
    assert 90 <= report["summary"]["count"] <= 102
    assert report["summary"]["ok"] == report["summary"]["count"]
    assert report["summary"]["elapsed_s"] >= 1.9
    # 50 calls a second at a cap of 1,000 in flight: none waited for a slot.
    assert report["schedule"]["held_at_cap"] == 0
    assert report["schedule"]["late_p50_ms"] is not None


@pytest.mark.e2e
@pytest.mark.parametrize("processes", ["1", "2"])
def test_ctrl_c_mid_run_prints_the_partial_report_and_exits_130(
    server: Server, processes: str
) -> None:
    command = [str(LOADGEN), "--target", server.address, "--json", "--processes", processes]
    run = subprocess.Popen(
        [*command, "--rps", "40", "--duration", "60s", "health"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # its own group, as a terminal's foreground job is
    )
    # Nothing outside tells when measuring began: a few seconds into a minute's run.
    time.sleep(5)
    os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C sends: to every process of the job
    out, err = run.communicate(timeout=30)

    assert run.returncode == 130, err
    assert "interrupted" in err
    report = json.loads(out)
    assert set(report) == REPORT_KEYS
    assert report["interrupted"] is True
    s = report["summary"]
    # What was measured until the interrupt, well short of the 2,400 calls asked for.
    assert 0 < s["ok"] == s["count"] < 2400
    assert s["elapsed_s"] < 30
    assert sum(w["ok"] for w in report["timeline"]) == s["ok"]


@pytest.mark.e2e
def test_wrong_passwords_are_counted_by_status_and_reason(server: Server) -> None:
    done = loadgen(
        server,
        *("--json", "--total", "20", "--concurrency", "2"),
        *("verify-password", "--id", server.ids[7], "--password", "not-the-password-1"),
    )

    assert done.returncode == 1
    report = report_of(done)
    assert (report["summary"]["ok"], report["summary"]["errors"]) == (0, 20)
    assert sum(e["count"] for e in report["errors"]) == 20
    kinds = {(e["status"], e["reason"]) for e in report["errors"]}
    # The first few are told "no"; then the ID number is throttled.
    assert kinds <= WRONG_PASSWORD_KINDS
    assert ("RESOURCE_EXHAUSTED", "TOO_MANY_FAILED_ATTEMPTS") in kinds
    assert report["histogram"] == []


@pytest.mark.e2e
def test_terminal_report_has_percentiles_histogram_and_errors(
    server: Server, tmp_path: Path
) -> None:
    citizens = tmp_path / "citizens.csv"
    with citizens.open("w", newline="") as f:
        rows = [("personal_id", "password"), (server.ids[6], PASSWORD)]
        csv.writer(f).writerows([*rows, (server.ids[7], "not-the-password-2")])

    done = loadgen(
        server,
        "--total",
        "20",
        "--concurrency",
        "2",
        "verify-password",
        "--citizens",
        str(citizens),
    )

    assert done.returncode == 1
    out = done.stdout
    assert "10 ok, 10 failed" in out
    for heading in ("p50", "p90", "p95", "p99", "latency histogram", "errors"):
        assert heading in out
    assert "█" in out
    assert "NOT_VERIFIED" in out or "TOO_MANY_FAILED_ATTEMPTS" in out
    assert PASSWORD not in out + done.stderr


def write_csv(path: Path, rows: Sequence[tuple[str, ...]]) -> Path:
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


@pytest.mark.e2e
def test_each_workload_makes_its_calls(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every workload but the two above, in this process (no start-up cost)."""
    registrable = [
        (
            c.personal_id,
            c.full_name,
            c.birth_date.isoformat(),
            c.gender.value,
            f"0981{i:06d}",
            base64.b64encode(portrait_capture(c.personal_id)).decode(),
        )
        for i, c in enumerate(registrable_citizens(REGISTRABLE))
    ]
    unregistered = write_csv(
        tmp_path / "register.csv",
        [("personal_id", "full_name", "birth_date", "gender", "phone", "portrait"), *registrable],
    )
    # One-time codes go to the enrolled citizens' phones, read back from the outbox.
    otp = write_csv(
        tmp_path / "otp.csv",
        [("personal_id", "phone")] + [(server.ids[i], _enrolled_phone(i)[0]) for i in (1, 2, 3)],
    )
    citizen = ("--id", server.ids[0], "--password", PASSWORD)
    runs = {
        "register": (REGISTRABLE, ["register", "--citizens", str(unregistered)]),
        "verify-otp": (3, ["verify-otp", "--citizens", str(otp), "--outbox", str(server.outbox)]),
        "sign-in": (4, ["sign-in", *citizen]),
        "share-via-qr": (20, ["share-via-qr", *citizen]),
        "verify-demographic": (
            20,
            [
                *("verify-demographic", "--id", server.ids[0]),
                *("--birth-date", server.birth_dates[0], "--gender", "female", "--partial"),
            ],
        ),
    }
    for name, (calls, argv) in runs.items():
        common = ["--target", server.address, "--api-key", server.api_key, "--json"]
        status = main([*common, "--total", str(calls), "--concurrency", "2", *argv])
        report = json.loads(capsys.readouterr().out)
        assert status == 0, (name, report["errors"])
        assert report["workload"] == name
        assert (report["summary"]["count"], report["summary"]["ok"]) == (calls, calls), name
