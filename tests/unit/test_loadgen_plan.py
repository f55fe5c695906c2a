"""eid-loadgen's plumbing without a server: how a run is shared among processes,
its options, the report's histogram and timeline, the citizens file, usage errors."""

from __future__ import annotations

import argparse
import base64
import io
import itertools
import json
import struct
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console

from eid_client._commands import UsageError
from eid_client.loadgen import LoadResult, main
from eid_client.loadgen.citizens import e164, read_citizens
from eid_client.loadgen.options import duration, warmup
from eid_client.loadgen.plan import RunPlan, needs, shares, split
from eid_client.loadgen.report import build_report, histogram, render, timeline


def plan(**changes: object) -> RunPlan:
    base: dict[str, object] = {
        "workload": "verify-token",
        "target": "127.0.0.1:1",
        "api_key": "k",
        "timeout": 5.0,
        "channels": 1,
        "concurrency": 8,
        "rps": None,
        "total": 101,
        "duration": None,
        "warmup_calls": 10,
        "warmup_seconds": None,
        "processes": 3,
    }
    return RunPlan(**{**base, **changes})  # type: ignore[arg-type]


def test_counts_are_cut_into_parts_that_add_up() -> None:
    assert [split(101, 3, k) for k in range(3)] == [34, 34, 33]
    assert [split(2, 3, k) for k in range(3)] == [1, 1, 0]


def test_used_up_items_go_in_disjoint_slices_sized_to_each_process() -> None:
    p = plan()
    items = list(range(200))

    parts = shares(p, items, consumes=True)

    assert needs(p) == [4 + 34, 3 + 34, 3 + 33]
    assert [len(s.items) for s in parts] == [38, 37, 36]
    together = [i for s in parts for i in s.items]
    assert together == list(range(111))  # each item once
    assert [s.total for s in parts] == [34, 34, 33]
    assert [s.warmup_calls for s in parts] == [4, 3, 3]
    assert sum(s.concurrency for s in parts) == 8


def test_reused_items_go_to_every_process_each_starting_further_along() -> None:
    parts = shares(plan(workload="verify-password"), ["a", "b"], consumes=False)
    assert [s.items for s in parts] == [["a", "b"], ["b", "a"], ["a", "b"]]


def test_a_fixed_rate_is_shared_and_interleaved() -> None:
    p = plan(rps=300.0, total=None, duration=2.0, warmup_calls=None, warmup_seconds=1.0)

    parts = shares(p, list(range(2000)), consumes=True)

    assert [s.rps for s in parts] == [100.0, 100.0, 100.0]
    assert [s.offset for s in parts] == pytest.approx([0, 1 / 300, 2 / 300])
    # 100 calls a second for 1 + 2 seconds, and one for the rounding.
    assert needs(p) == [101 + 201] * 3


def test_a_timed_closed_loop_cannot_tell_how_many_items_it_uses() -> None:
    p = plan(total=None, duration=5.0, warmup_calls=None)
    assert needs(p) == [None, None, None]
    assert needs(plan(total=None, duration=5.0, prepare=90)) == [30, 30, 30]


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30.0), ("500ms", 0.5), ("2m", 120.0), ("1.5", 1.5), ("1h", 3600)]
)
def test_durations(text: str, seconds: float) -> None:
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["", "s", "5 minutes", "-1s", "0s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        duration(text)


def test_a_warmup_is_calls_or_time() -> None:
    assert warmup("200") == (200, None)
    assert warmup("5s") == (None, 5.0)
    with pytest.raises(argparse.ArgumentTypeError):
        warmup("0")


def test_histogram_buckets_hold_every_call_once() -> None:
    latencies = [0.001 * (1 + i % 50) for i in range(500)] + [0.5]

    buckets = histogram(latencies)

    assert len(buckets) == 10
    assert sum(b["count"] for b in buckets) == len(latencies)
    assert buckets[0]["from_ms"] == 1.0 and buckets[-1]["to_ms"] == 500.0
    assert all(a["to_ms"] == b["from_ms"] for a, b in itertools.pairwise(buckets))
    assert buckets[-1]["count"] == 1  # the outlier alone at the top
    assert histogram([]) == []
    assert histogram([0.002, 0.002]) == [{"from_ms": 2.0, "to_ms": 2.0, "count": 2}]


def test_timeline_windows_count_calls_by_when_they_ended() -> None:
    ends = [0.05, 0.15, 0.16, 0.95, 1.95]
    result = LoadResult(6, 1, 2.0, [0.01] * 5, Counter({"UNAVAILABLE": 1}), ends, [1.0])

    width, windows = timeline(result)

    assert width == 0.1
    assert len(windows) == 20
    assert [w["ok"] for w in windows[:3]] == [1, 2, 0]
    assert windows[1]["rps"] == 20.0
    assert windows[10]["errors"] == 1
    assert windows[2]["p50_ms"] is None
    assert sum(w["ok"] for w in windows) == 5


def test_report_keys_and_errors_by_status_and_reason() -> None:
    kinds = Counter({"RESOURCE_EXHAUSTED TOO_MANY_FAILED_ATTEMPTS": 3, "OK NOT_VERIFIED": 2})
    result = LoadResult(9, 5, 1.0, [0.002] * 4, kinds, [0.1, 0.2, 0.3, 0.4], [0.5] * 5)

    report = build_report(
        plan(processes=1),
        result,
        warmup_calls=10,
        exhausted=False,
        prepared_items=111,
        prepare_seconds=0.5,
    )

    assert report["schema"] == "eid-loadgen/1"
    assert report["errors"] == [
        {"status": "RESOURCE_EXHAUSTED", "reason": "TOO_MANY_FAILED_ATTEMPTS", "count": 3},
        {"status": "OK", "reason": "NOT_VERIFIED", "count": 2},
    ]
    assert "error_kinds" not in report["summary"]
    assert report["summary"]["count"] == 9 and report["summary"]["p95_ms"] == 2.0
    json.dumps(report)  # JSON-ready as it is


def test_an_error_reason_a_server_sent_is_printed_as_text() -> None:
    """The ErrorInfo reason comes from the server (or a proxy before it): no rich
    markup, no terminal control sequences in the errors table."""
    reason = "[link=https://evil.example]QUOTA[/link]\x1b]52;c;eA==\x07"
    kinds = Counter({f"PERMISSION_DENIED {reason}": 3})
    result = LoadResult(3, 3, 1.0, [], kinds, [], [0.5] * 3)
    report = build_report(
        plan(processes=1),
        result,
        warmup_calls=0,
        exhausted=False,
        prepared_items=0,
        prepare_seconds=0.0,
    )
    printed = io.StringIO()
    Console(file=printed, width=200, color_system=None).print(render(report))
    out = printed.getvalue()
    assert "[link=https://evil.example]QUOTA[/link]\\x1b]52;c;eA==\\x07" in out
    assert "\x1b" not in out and "\x07" not in out


def test_citizens_file(tmp_path: Path) -> None:
    good = tmp_path / "c.csv"
    good.write_text("personal_id,phone,unknown\n001190791514,0912345678,x\n\n")
    (citizen,) = read_citizens(good)
    assert (citizen.personal_id, citizen.phone, citizen.password) == (
        "001190791514",
        "0912345678",
        "",
    )
    assert "001190791514" not in repr(citizen)  # never in a log line or traceback
    bad = tmp_path / "bad.csv"
    bad.write_text("id,phone\n1,2\n")
    with pytest.raises(UsageError, match="personal_id"):
        read_citizens(bad)
    with pytest.raises(UsageError, match="cannot read"):
        read_citizens(tmp_path / "missing.csv")


def test_register_needs_a_base64_portrait_per_citizen(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = "personal_id,full_name,birth_date,gender,phone"
    row = "001190791514,Nguyễn Thị Lan,1990-05-17,female,0912345678"
    without = tmp_path / "without.csv"
    without.write_text(f"{header}\n{row}\n", encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text(f"{header},portrait\n{row},not base64!\n", encoding="utf-8")
    for path, says in ((without, "1 citizen(s) have no portrait"), (bad, "not base64")):
        argv = ["--target", "127.0.0.1:9", "--total", "1", "register", "--citizens", str(path)]
        assert main(argv) == 2
        assert says in capsys.readouterr().err
    portrait = struct.pack("<128f", *[0.5] * 128)
    (citizen,) = read_citizens(_written(tmp_path, header, row, portrait))
    assert citizen.portrait_bytes() == portrait
    assert "portrait" not in repr(citizen)  # never in a log line


def _written(tmp_path: Path, header: str, row: str, portrait: bytes) -> Path:
    path = tmp_path / "good.csv"
    encoded = base64.b64encode(portrait).decode()
    path.write_text(f"{header},portrait\n{row},{encoded}\n", encoding="utf-8")
    return path


def test_phones_as_the_outbox_writes_them() -> None:
    assert e164("0912345678") == "+84912345678"
    assert e164("+84912345678") == "+84912345678"
    assert e164("84912345678") == "+84912345678"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--processes", "4", "--concurrency", "2", "health"], "--concurrency 4"),
        (["--duration", "1s", "verify-token", "--session", "s"], "--prepare N"),
        (["--rps", "0", "health"], "must be more than 0"),
        (["--warmup", "soon", "health"], "not a duration"),
        (["verify-otp"], "--citizens"),
        # What the ID number tells: the server would refuse every call.
        (
            ["--total", "2", "verify-demographic", "--id", "001190791514", "--gender", "male"],
            "full_name or full birth_date",
        ),
        (
            ["--total", "2", "verify-demographic", "--id", "001190791514", "--birth-date", "1990"],
            "full_name or full birth_date",
        ),
    ],
)
def test_usage_errors_exit_2_and_say_why(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--api-key", "k", "--target", "127.0.0.1:9", *argv]) == 2
    assert message in capsys.readouterr().err


def test_help_has_examples_for_each_workload(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "--rps" in text and "--chart" in text and "examples" in text
    for workload in ("health", "verify-otp", "register", "start-approval"):
        assert main([workload, "--help"]) == 0
        assert "eid-loadgen" in capsys.readouterr().out


def test_the_chart_replaces_a_link_planted_at_its_path(tmp_path: Path) -> None:
    """--chart /tmp/run.png: a link someone planted there is replaced, not written
    through into the file it names."""
    pytest.importorskip("matplotlib")
    from eid_client.loadgen.chart import write_chart

    result = LoadResult(3, 0, 1.0, [0.002] * 3, Counter(), [0.1, 0.5, 0.9], [])
    report = build_report(
        plan(processes=1),
        result,
        warmup_calls=0,
        exhausted=False,
        prepared_items=0,
        prepare_seconds=0.0,
    )
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    chart = tmp_path / "run.png"
    chart.symlink_to(victim)
    write_chart(report, chart)
    assert victim.read_text() == "keep"
    assert not chart.is_symlink() and chart.read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.png", "victim.txt"]
