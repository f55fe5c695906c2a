"""``eid history`` against a fake server: the citizen's access history as a
table (or records in a narrow terminal), page by page or all of it, and JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2

from eid.v1 import identity_service_pb2 as pb
from eid_client.cli import main
from tests.unit.client_cli_kit import fresh_terminal
from tests.unit.test_client_account_cli import refuse
from tests.unit.test_client_calls import FakeEid

T0 = 1_900_000_000
RECORDS = [
    pb.AccessRecord(
        verification_id="evt_0",
        party_id="rp_bank",
        party_name="Ngân hàng [b]Thử",
        method=pb.VERIFICATION_METHOD_ONE_TIME_CODE,
        verified=True,
        attributes=[pb.ATTRIBUTE_FULL_NAME, pb.ATTRIBUTE_BIRTH_DATE],
        verify_time=timestamp_pb2.Timestamp(seconds=T0),
        receipt="head.body.sig",
    ),
    pb.AccessRecord(
        verification_id="evt_1",
        party_id="rp_telco",
        party_name="Telco",
        method=pb.VERIFICATION_METHOD_DEMOGRAPHIC,
        verified=False,
        verify_time=timestamp_pb2.Timestamp(seconds=T0 - 86_400),
    ),
    pb.AccessRecord(
        verification_id="evt_2",
        party_id="rp_gone",
        method=pb.VERIFICATION_METHOD_PASSWORD,
        verified=True,
        attributes=[pb.ATTRIBUTE_PERSONAL_ID],
        verify_time=timestamp_pb2.Timestamp(seconds=T0 - 2 * 86_400),
    ),
]


def paged(request: pb.ListAccessHistoryRequest, context: grpc.ServicerContext) -> Any:
    """RECORDS two at a time unless asked otherwise; tokens are the next offset."""
    size = request.page_size or 2
    start = int(request.page_token or "0")
    end = min(start + size, len(RECORDS))
    token = str(end) if end < len(RECORDS) else ""
    return pb.ListAccessHistoryResponse(records=RECORDS[start:end], next_page_token=token)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh_terminal(monkeypatch, columns=160)  # wide enough for the table


@pytest.fixture
def fake() -> Iterator[tuple[FakeEid, str]]:
    eid = FakeEid(ListAccessHistory=paged)
    with eid.serve() as target:
        yield eid, target


def run(target: str, *argv: str) -> int:
    return main(["--target", target, *argv])


def test_the_first_page_as_a_table_with_the_next_pages_token(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    eid, target = fake
    monkeypatch.setenv("EID_SESSION", "access-abc")
    assert run(target, "history") == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    header = next(line for line in lines if "Time" in line)
    for column in ("Party", "Method", "Verified", "Attributes"):
        assert column in header
    bank = next(line for line in lines if "Ngân hàng [b]Thử" in line)  # not rich markup
    assert "2030-03-1" in bank and "ONE_TIME_CODE" in bank and " yes " in bank
    assert "full_name, birth_date" in bank
    telco = next(line for line in lines if "Telco" in line)
    assert "DEMOGRAPHIC" in telco and " no " in telco and "none" in telco
    assert "rp_gone" not in captured.out  # the second page
    assert "newest first" in captured.out
    assert "eid history --page-token 2" in captured.err and "--all" in captured.err
    call = eid.only("ListAccessHistory")
    assert (call.request.page_size, call.request.page_token) == (0, "")
    assert call.metadata["authorization"] == "Bearer access-abc"


def test_the_page_a_token_names(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]
) -> None:
    eid, target = fake
    assert run(target, "history", "--session", "s", "--page-token", "2", "--page-size", "5") == 0
    captured = capsys.readouterr()
    party = next(line for line in captured.out.splitlines() if "PASSWORD" in line)
    assert "rp_gone" in party and "personal_id" in party  # no name: the party's id
    assert "Telco" not in captured.out
    assert "--page-token" not in captured.err  # the last page
    call = eid.only("ListAccessHistory")
    assert (call.request.page_size, call.request.page_token) == (5, "2")


def test_all_pages(fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]) -> None:
    eid, target = fake
    assert run(target, "history", "--session", "s", "--all") == 0
    captured = capsys.readouterr()
    for party in ("Thử", "Telco", "rp_gone"):
        assert party in captured.out
    assert "--page-token" not in captured.err
    assert [c.request.page_token for c in eid.calls] == ["", "2"]


def test_json_keeps_ids_receipts_and_the_next_token(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, target = fake
    assert run(target, "--json", "history", "--session", "s", "--page-size", "1") == 0
    page = json.loads(capsys.readouterr().out)
    assert [r["verification_id"] for r in page["records"]] == ["evt_0"]
    assert page["records"][0]["receipt"] == "head.body.sig"
    assert page["next_page_token"] == "1"
    assert run(target, "--json", "history", "--session", "s", "--all") == 0
    everything = json.loads(capsys.readouterr().out)
    assert [r["verification_id"] for r in everything["records"]] == ["evt_0", "evt_1", "evt_2"]
    assert everything["next_page_token"] == ""


def test_a_narrow_terminal_prints_records(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, target = fake
    monkeypatch.setenv("COLUMNS", "40")
    assert run(target, "history", "--session", "s") == 0
    out = capsys.readouterr().out
    assert "Access history (newest first" in out
    assert any(line.strip().startswith("Party") and "Telco" in line for line in out.splitlines())


def test_no_records(capsys: pytest.CaptureFixture[str]) -> None:
    eid = FakeEid(ListAccessHistory=pb.ListAccessHistoryResponse())
    with eid.serve() as target:
        assert run(target, "history", "--session", "s") == 0
        assert capsys.readouterr().out == "No verifications yet.\n"


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        ([], "history needs a citizen session"),
        (["--session", "s", "--all", "--page-token", "2"], "not allowed with"),
        (["--session", "s", "--page-size", "0"], "at least 1"),
    ],
)
def test_usage_errors(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str], argv: list[str], problem: str
) -> None:
    eid, target = fake
    assert run(target, "history", *argv) == 2
    assert problem in capsys.readouterr().err
    assert eid.calls == []


def test_an_expired_session_says_to_sign_in_again(capsys: pytest.CaptureFixture[str]) -> None:
    expired = refuse(grpc.StatusCode.UNAUTHENTICATED, "SESSION_INVALID", "sign in again")
    eid = FakeEid(ListAccessHistory=expired)
    with eid.serve() as target:
        assert run(target, "history", "--session", "old") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: UNAUTHENTICATED SESSION_INVALID")
    assert "eid signin" in err


def test_help_shows_real_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", "--help"]) == 0
    out = capsys.readouterr().out
    for example in ("eid history --all", "--page-token", "verify-receipt"):
        assert example in out


def test_a_guardian_reads_a_dependants_history(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]
) -> None:
    eid, target = fake
    child = "acc_4a1f0c2e9b7d4e6f8a3c5b1d2e"
    argv = ["history", "--session", "access-1", "--dependant", child]
    assert main(["--target", target, *argv]) == 0
    assert f"eid history --page-token 2 --dependant {child}" in capsys.readouterr().err
    assert main(["--target", target, *argv, "--all"]) == 0
    assert {c.request.dependant_account_id for c in eid.calls} == {child}
    assert len(eid.calls) == 3


def test_each_party_is_named_by_its_id_too(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A party chooses its own name, and may choose another's: the citizen
    reading who verified them sees each party's id beside it."""
    _, target = fake
    assert run(target, "history", "--session", "s") == 0
    out = capsys.readouterr().out
    assert "Telco (rp_telco)" in out
    assert "(rp_bank)" in out
