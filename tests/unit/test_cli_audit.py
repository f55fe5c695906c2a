"""`eid-server audit verify`'s help and output, without a store."""

from __future__ import annotations

import pytest
from rich.console import Console

from eid_service.cli import build_parser, main
from eid_service.cli_audit import as_json, broken_table, explain, summary
from eid_service.use_cases.audit_check import AuditReport
from eid_service.use_cases.ports import BreakKind, BrokenLink

SUBJECT = bytes.fromhex("3f2a9c0d1e4b5a67" * 4)
LINKS = (
    BrokenLink(SUBJECT, 2, "evt_00112233445566778899", BreakKind.DIGEST_MISMATCH),
    BrokenLink(SUBJECT, 5, None, BreakKind.SEQUENCE_GAP),
    BrokenLink(SUBJECT, 0, "evt_aa", BreakKind.SEQUENCE_GAP),
    BrokenLink(SUBJECT, 3, "evt_bb", BreakKind.PREVIOUS_MISMATCH),
    BrokenLink(SUBJECT, 7, None, BreakKind.HEAD_MISMATCH),
    BrokenLink(SUBJECT, 6, "evt_cc", BreakKind.HEAD_MISMATCH),
)


def test_help_shows_real_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["audit", "verify", "--help"])
    assert done.value.code == 0
    shown = capsys.readouterr().out
    for text in ("eid-server audit verify --json", "--batch", "exit 1", "12 hex digits"):
        assert text in shown
    assert "eid-server audit verify" in build_parser().format_help()


def test_a_batch_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["audit", "verify", "--batch", "0"])
    assert "at least 1" in capsys.readouterr().err


def test_a_batch_too_large_for_the_database_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Before, --batch 99999999999999999999 reached SQLite's LIMIT and ended
    in an OverflowError traceback."""
    with pytest.raises(SystemExit) as refused:
        build_parser().parse_args(["audit", "verify", "--batch", "99999999999999999999"])
    assert refused.value.code == 2
    assert "at most 100,000" in capsys.readouterr().err
    assert build_parser().parse_args(["audit", "verify", "--batch", "100000"]).batch == 100_000


def test_each_kind_has_its_own_one_line_explanation() -> None:
    lines = [explain(link) for link in LINKS]
    assert len(set(lines)) == len(lines)
    assert all("\n" not in line and len(line) < 70 for line in lines)


def test_the_table_shows_only_a_prefix_of_the_subject_digest() -> None:
    report = AuditReport(3, 40, LINKS[:2])
    console = Console(width=200, record=True)
    console.print(broken_table(report))
    shown = console.export_text()
    assert "3f2a9c0d1e4b " in shown and SUBJECT.hex()[:13] not in shown
    assert "evt_00112233445566778899" in shown and "sequence_gap" in shown
    assert summary(report) == "3 subject(s), 40 event(s) checked: 2 chain(s) broken"
    assert summary(AuditReport(3, 40, ())).endswith("every audit chain is intact")


def test_json_names_each_broken_link() -> None:
    shown = as_json(AuditReport(1, 4, LINKS[1:2]))
    assert shown == {
        "intact": False,
        "subjects": 1,
        "events": 4,
        "broken": [
            {
                "subject": "3f2a9c0d1e4b",
                "seq": 5,
                "event_id": None,
                "kind": "sequence_gap",
                "explanation": explain(LINKS[1]),
            }
        ],
    }
