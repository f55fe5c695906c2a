"""``eid verify-receipt``: a receipt checked offline with a keys file or the cached
keys of --target; the claims as a table or JSON, refusals with their reason."""

from __future__ import annotations

import dataclasses
import datetime
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import timestamp_pb2

from eid.v1 import identity_service_pb2 as pb
from eid_client.cli import main
from eid_client.keys_cache import cache_file_for
from eid_client.receipts import ReceiptClaims, sign_receipt
from tests.unit.client_cli_kit import fresh_terminal
from tests.unit.test_client_calls import FakeEid
from tests.unit.test_client_keys_cache import Signer, published

PARTY = "rp_0123456789abcdef"
SUBJECT = "sub_" + "q" * 32
CLAIMS = ReceiptClaims(
    issuer="eid.vn",
    subject=SUBJECT,
    audience=PARTY,
    issued_at=datetime.datetime(2026, 3, 14, 9, 26, 53, tzinfo=datetime.UTC),
    verification_id="vrf_42",
    mode="one_time_code",
    level="LEVEL_1",
    attributes=("birth_date", "full_name"),
    verified=True,
)
RETIRED_UNTIL = timestamp_pb2.Timestamp(seconds=1_700_000_000)  # 2023-11-14


@pytest.fixture(autouse=True)
def _clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    fresh_terminal(monkeypatch)


SIGNER, RETIRED, REVOKED = Signer("k2"), Signer("k1"), Signer("k0")


@pytest.fixture
def server() -> Iterator[tuple[FakeEid, str]]:
    eid = FakeEid(
        GetVerificationKeys=published(
            SIGNER.listed(),
            RETIRED.listed(pb.VERIFICATION_KEY_STATE_RETIRED, not_after=RETIRED_UNTIL),
            REVOKED.listed(pb.VERIFICATION_KEY_STATE_REVOKED),
        )
    )
    with eid.serve() as target:
        yield eid, target


def receipt(signer: Signer = SIGNER, claims: ReceiptClaims = CLAIMS) -> str:
    return sign_receipt(claims, signer.key_id, signer.private)


def run(target: str, *argv: str) -> int:
    return main(["--target", target, *argv])


def test_a_receipt_is_checked_with_a_keys_file_and_no_server(
    server: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    eid, target = server
    keys = tmp_path / "keys.json"
    assert run(target, "keys", "--out", str(keys)) == 0
    eid.calls.clear()
    capsys.readouterr()
    nowhere = "127.0.0.1:1"  # nothing listens there
    assert run(nowhere, "verify-receipt", receipt(), "--keys", str(keys)) == 0
    out = capsys.readouterr().out
    for expected in (
        "Verification receipt",
        "genuine, checked offline",
        "verified",
        "eid.vn",
        PARTY,
        SUBJECT,
        "vrf_42",
        "one_time_code",
        "LEVEL_1",
        "birth_date, full_name",
        "2026-03-1",
        "k2",
    ):
        assert expected in out
    argv = ["verify-receipt", receipt(), "--keys", str(keys), "--audience", PARTY]
    assert run(nowhere, "--json", *argv, "--issuer", "eid.vn") == 0
    assert json.loads(capsys.readouterr().out) == {
        "genuine": True,
        "result": "verified",
        "reason": None,
        "issuer": "eid.vn",
        "audience": PARTY,
        "subject": SUBJECT,
        "verification_id": "vrf_42",
        "mode": "one_time_code",
        "level": "LEVEL_1",
        "attributes": ["birth_date", "full_name"],
        "issue_time": "2026-03-14T09:26:53+00:00",
        "key_id": "k2",
    }
    assert eid.calls == []


def test_a_genuine_receipt_of_a_failed_verification_exits_zero(
    server: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, target = server
    failed = dataclasses.replace(
        CLAIMS, level="", attributes=(), verified=False, reason="CODE_MISMATCH"
    )
    assert run(target, "verify-receipt", receipt(claims=failed)) == 0
    out = capsys.readouterr().out
    assert "not verified (CODE_MISMATCH)" in out and "none" in out


def test_the_keys_are_fetched_once_then_cached(
    server: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]
) -> None:
    eid, target = server
    assert run(target, "verify-receipt", receipt()) == 0
    assert f"(cache: {cache_file_for(target)})" in capsys.readouterr().err
    assert run(target, "verify-receipt", receipt()) == 0
    assert "Fetched" not in capsys.readouterr().err
    assert len(eid.calls) == 1
    assert run(target, "verify-receipt", receipt(), "--refresh-keys") == 0
    assert len(eid.calls) == 2


def test_a_key_the_cache_lacks_is_fetched_once_more(
    server: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]
) -> None:
    eid, target = server
    assert run(target, "verify-receipt", receipt()) == 0
    unknown = receipt(Signer("k9"))
    assert run(target, "verify-receipt", unknown) == 1
    err = capsys.readouterr().err
    assert "error: RECEIPT_KEY_UNKNOWN" in err and "--keys FILE" in err
    assert len(eid.calls) == 2


def test_a_damaged_receipt_fetches_nothing(
    server: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]
) -> None:
    eid, target = server
    assert run(target, "verify-receipt", receipt()[:-3]) == 1
    err = capsys.readouterr().err
    assert "error: RECEIPT_MALFORMED" in err and "three base64url parts" in err
    assert run(target, "verify-receipt", "x" * 5000) == 1
    assert "error: RECEIPT_TOO_LARGE" in capsys.readouterr().err
    assert eid.calls == []


@pytest.mark.parametrize(
    ("token", "argv", "reason"),
    [
        (receipt(Signer("k2")), [], "RECEIPT_SIGNATURE_INVALID"),  # the kid, another key
        (receipt(REVOKED), [], "RECEIPT_KEY_REVOKED"),
        (receipt(RETIRED), [], "RECEIPT_ISSUED_AFTER_KEY_RETIRED"),
        (receipt(), ["--audience", "rp_other"], "RECEIPT_AUDIENCE_MISMATCH"),
        (receipt(), ["--issuer", "eid.example"], "RECEIPT_ISSUER_MISMATCH"),
    ],
)
def test_refusals_exit_one_with_the_reason(
    server: tuple[FakeEid, str],
    capsys: pytest.CaptureFixture[str],
    token: str,
    argv: list[str],
    reason: str,
) -> None:
    _, target = server
    assert run(target, "verify-receipt", token, *argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"error: {reason}: " in captured.err
    assert SUBJECT not in captured.err


def test_the_receipt_is_read_from_stdin(
    server: tuple[FakeEid, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, target = server
    monkeypatch.setattr("sys.stdin", io.StringIO(receipt() + "\n"))
    assert run(target, "--json", "verify-receipt", "-") == 0
    assert json.loads(capsys.readouterr().out)["subject"] == SUBJECT
    assert run(target, "verify-receipt", "-") == 2  # stdin is empty now
    assert "no receipt" in capsys.readouterr().err


def test_a_missing_keys_file_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = str(tmp_path / "none.json")
    assert run("127.0.0.1:1", "verify-receipt", receipt(), "--keys", missing) == 2
    assert "no such file" in capsys.readouterr().err


def test_help_shows_the_command_and_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "verify-receipt" in capsys.readouterr().out
    assert main(["verify-receipt", "--help"]) == 0
    out = capsys.readouterr().out
    for expected in ("--keys", "--issuer", "--audience", "jq -r .receipt", "never expires"):
        assert expected in out
