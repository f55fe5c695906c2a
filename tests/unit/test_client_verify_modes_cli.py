"""``eid request-otp``, ``eid verify`` by one-time code or demographic claim, and
``--scopes``, against a fake server: tables, receipts, JSON and usage errors."""

from __future__ import annotations

import datetime
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import timestamp_pb2

from eid.v1 import identity_service_pb2 as pb
from eid_client.cli import main
from eid_client.receipts import ReceiptClaims, sign_receipt
from tests.unit.client_cli_kit import fresh_terminal
from tests.unit.test_client_calls import FakeEid
from tests.unit.test_client_keys_cache import Signer, published

PID = "001190791514"
PARTY = "rp_0123456789abcdef"
SUBJECT = "sub_" + "q" * 32
T0 = timestamp_pb2.Timestamp(seconds=1_900_000_000)
SIGNER = Signer("k2")
RECEIPT = sign_receipt(
    ReceiptClaims(
        issuer="eid.vn",
        subject=SUBJECT,
        audience=PARTY,
        issued_at=datetime.datetime(2030, 3, 17, 17, 46, 40, tzinfo=datetime.UTC),
        verification_id="evt_7",
        mode="one_time_code",
        level="LEVEL_1",
        attributes=("birth_date", "full_name", "gender"),
        verified=True,
    ),
    SIGNER.key_id,
    SIGNER.private,
)
BY_CODE = pb.VerifyResponse(
    verified=True,
    method=pb.VERIFICATION_METHOD_ONE_TIME_CODE,
    level=pb.ACCOUNT_LEVEL_1,
    attributes=pb.CitizenAttributes(full_name="Nguyễn Thị [b]Lan", birth_date="1990-05-17"),
    verification_id="evt_7",
    verify_time=T0,
    subject=SUBJECT,
    receipt=RECEIPT,
)
BY_CLAIM = pb.VerifyResponse(
    verified=False,
    method=pb.VERIFICATION_METHOD_DEMOGRAPHIC,
    verification_id="evt_8",
    verify_time=T0,
    demographic=pb.DemographicResult(
        full_name=pb.ATTRIBUTE_MATCH_MATCH,
        full_name_score=87,
        birth_date=pb.ATTRIBUTE_MATCH_NO_MATCH,
    ),
)


@pytest.fixture(autouse=True)
def _clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    fresh_terminal(monkeypatch)


@pytest.fixture
def fake() -> Iterator[tuple[FakeEid, str]]:
    eid = FakeEid(
        RequestOtp=pb.RequestOtpResponse(expire_time=T0),
        Verify=BY_CODE,
        GetVerificationKeys=published(SIGNER.listed()),
    )
    with eid.serve() as target:
        yield eid, target


def run(target: str, *argv: str) -> int:
    return main(["--target", target, "--api-key", "rp-key", *argv])


def test_request_otp_prints_when_the_code_expires(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]
) -> None:
    eid, target = fake
    assert run(target, "request-otp", "--id", PID, "--request-id", "otp-1") == 0
    captured = capsys.readouterr()
    assert "One-time code" in captured.out and "2030-03-1" in captured.out  # any local zone
    assert f"eid verify --id {PID} --otp" in captured.err
    call = eid.only("RequestOtp")
    assert (call.request.personal_id, call.request.request_id) == (PID, "otp-1")
    assert call.metadata["x-api-key"] == "rp-key"


@pytest.mark.parametrize(
    "argv",
    [["request-otp", "--id", PID], ["verify", "--id", PID, "--otp", "123456"]],
)
def test_party_commands_need_an_api_key(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    eid, target = fake
    assert main(["--target", target, *argv]) == 2
    assert "--api-key" in capsys.readouterr().err
    assert eid.calls == []


def test_verify_by_code_prints_the_verdict_subject_and_receipt_last(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]
) -> None:
    eid, target = fake
    assert run(target, "verify", "--id", PID, "--otp", "123456", "--scopes", "basic") == 0
    captured = capsys.readouterr()
    for expected in ("yes", "ONE_TIME_CODE", SUBJECT, "Nguyễn Thị [b]Lan", "evt_7"):
        assert expected in captured.out
    assert captured.out.endswith(f"\n{RECEIPT}\n")  # unwrapped, for copy and paste
    assert "eid verify-receipt" in captured.err
    request = eid.only("Verify").request
    assert (request.one_time_code.personal_id, request.one_time_code.code) == (PID, "123456")
    assert list(request.requested_scopes) == [pb.SCOPE_BASIC]
    assert len(request.request_id) == 36


def test_verify_with_the_contact_scope_prints_the_phone_and_email(
    capsys: pytest.CaptureFixture[str],
) -> None:
    contact = pb.CitizenAttributes(phone_number="+84912345678", email="lan@example.vn")
    answer = pb.VerifyResponse(verified=True, attributes=contact, subject=SUBJECT)
    eid = FakeEid(Verify=answer)
    with eid.serve() as target:
        assert run(target, "verify", "--id", PID, "--otp", "123456", "--scopes", "contact") == 0
        out = capsys.readouterr().out
        for expected in ("Phone number", "+84912345678", "Email", "lan@example.vn"):
            assert expected in out
        assert run(target, "--json", "verify", "--id", PID, "--otp", "123456") == 0
        released = json.loads(capsys.readouterr().out)["attributes"]
        assert (released["phone_number"], released["email"]) == ("+84912345678", "lan@example.vn")
    assert [list(c.request.requested_scopes) for c in eid.calls] == [[pb.SCOPE_CONTACT], []]


def test_the_printed_receipt_checks_offline(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, target = fake
    assert run(target, "--json", "verify", "--id", PID, "--otp", "123456") == 0
    answer = json.loads(capsys.readouterr().out)
    assert (answer["subject"], answer["receipt"]) == (SUBJECT, RECEIPT)
    monkeypatch.setattr("sys.stdin", io.StringIO(answer["receipt"] + "\n"))
    assert run(target, "verify-receipt", "-", "--audience", PARTY) == 0
    out = capsys.readouterr().out
    assert "genuine" in out and SUBJECT in out and "one_time_code" in out


def test_a_failed_code_says_how_to_get_a_new_one(capsys: pytest.CaptureFixture[str]) -> None:
    failed = pb.VerifyResponse(method=pb.VERIFICATION_METHOD_ONE_TIME_CODE, verification_id="e")
    eid = FakeEid(Verify=failed)
    with eid.serve() as target:
        assert run(target, "verify", "--id", PID, "--otp", "000000") == 0
    captured = capsys.readouterr()
    verdict = next(line for line in captured.out.splitlines() if "│ Verified " in line)
    assert "│ no " in verdict
    assert captured.out.rstrip().endswith("┘")  # no receipt to print
    assert f"eid request-otp --id {PID}" in captured.err
    assert "verify-receipt" not in captured.err


def test_verify_demographic_prints_each_claims_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    eid = FakeEid(Verify=BY_CLAIM)
    with eid.serve() as target:
        argv = ["verify", "--id", PID, "--demographic", "--name", "nguyen lan", "--partial"]
        assert run(target, *argv, "--threshold", "85", "--birth-date", "1991") == 0
    out = capsys.readouterr().out
    assert "DEMOGRAPHIC" in out and "Demographic claim" in out
    lines = out.splitlines()
    assert "MATCH (score 87)" in next(line for line in lines if "Full name" in line)
    assert "NO_MATCH" in next(line for line in lines if "Birth date" in line)
    assert "not claimed" in next(line for line in lines if "Gender" in line)
    claim = eid.only("Verify").request.demographic
    assert (claim.personal_id, claim.full_name, claim.birth_date, claim.gender) == (
        PID,
        "nguyen lan",
        "1991",
        pb.GENDER_UNSPECIFIED,
    )
    assert (claim.name_match, claim.name_threshold) == (pb.NAME_MATCH_STRATEGY_PARTIAL, 85)


def test_verify_demographic_json(capsys: pytest.CaptureFixture[str]) -> None:
    eid = FakeEid(Verify=BY_CLAIM)
    with eid.serve() as target:
        argv = ["--json", "verify", "--id", PID, "--demographic", "--gender", "female"]
        assert run(target, *argv) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["verified"] is False
    assert answer["demographic"]["birth_date"] == "ATTRIBUTE_MATCH_NO_MATCH"
    claim = eid.only("Verify").request.demographic
    assert (claim.gender, claim.name_match) == (pb.GENDER_FEMALE, pb.NAME_MATCH_STRATEGY_EXACT)


def test_password_and_redeem_take_scopes(
    fake: tuple[FakeEid, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    eid, target = fake
    monkeypatch.setenv("EID_PASSWORD", "s3cret-password")
    assert run(target, "verify", "--id", PID, "--scopes", "id_number,basic") == 0
    assert run(target, "redeem", "tok.en", "--scopes", "SCOPE_BASIC", "--request-id", "r-1") == 0
    by_password, by_share = (c.request for c in eid.calls)
    assert by_password.password.password == "s3cret-password"
    assert list(by_password.requested_scopes) == [pb.SCOPE_ID_NUMBER, pb.SCOPE_BASIC]
    assert (by_share.qr_share.token, by_share.request_id) == ("tok.en", "r-1")
    assert list(by_share.requested_scopes) == [pb.SCOPE_BASIC]


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--otp", "123456", "--password", "pw"], "a password goes with password mode"),
        (["--demographic", "--password-stdin"], "a password goes with password mode"),
        (["--otp", "123456", "--demographic"], "not allowed with"),
        (["--name", "An"], "--name: only with --demographic"),
        (["--otp", "1", "--birth-date", "1990", "--partial"], "--birth-date, --partial: only"),
        (["--demographic"], "at least one of --name, --birth-date, --gender"),
        (["--demographic", "--gender", "male", "--scopes", "basic"], "releases no attributes"),
        (["--demographic", "--birth-date", "1990", "--partial"], "--partial scores a claimed"),
        (["--demographic", "--name", "An", "--threshold", "90"], "--threshold goes with"),
        (["--demographic", "--name", "An", "--partial", "--threshold", "79"], "from 80 to 100"),
        (["--demographic", "--name", "An", "--partial", "--threshold", "x"], "from 80 to 100"),
        (["--demographic", "--gender", "other"], "invalid choice"),
        (["--otp", "123456", "--scopes", "basic,blood_type"], "unknown scope 'blood_type'"),
    ],
)
def test_impossible_verifications_are_usage_errors(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str], argv: list[str], problem: str
) -> None:
    eid, target = fake
    assert run(target, "verify", "--id", PID, *argv) == 2
    assert problem in capsys.readouterr().err
    assert eid.calls == []


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        ("verify", ["--otp 123456", "--demographic", "--partial --threshold", "verify-receipt -"]),
        ("request-otp", ["request-otp --id", "--otp 123456"]),
        ("redeem", ["--scopes basic"]),
    ],
)
def test_help_shows_real_examples(
    capsys: pytest.CaptureFixture[str], command: str, shown: list[str]
) -> None:
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    for example in shown:
        assert example in out
