"""The ``eid`` CLI against a fake server: exit codes, tables, JSON, errors, passwords."""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import timestamp_pb2

from eid.v1 import identity_service_pb2 as pb
from eid_client import qr
from eid_client.cli import main
from tests.unit.client_cli_kit import fresh_terminal
from tests.unit.test_client_calls import FakeEid
from tests.unit.test_client_errors import reject_with_rich_status

PASSWORD = "s3cret-password"
EXPIRY = timestamp_pb2.Timestamp(seconds=1_900_000_000)

REGISTERED = pb.RegisterResponse(
    account=pb.Account(
        account_id="acc-42", level=pb.ACCOUNT_LEVEL_1, state=pb.ACCOUNT_STATE_PENDING
    ),
    delivery=pb.ActivationDelivery(
        channel=pb.DELIVERY_CHANNEL_SMS, masked_destination="+84 *** *** 678", expire_time=EXPIRY
    ),
)
ACTIVATED = pb.ActivateResponse(
    account=pb.Account(account_id="acc-42", level=pb.ACCOUNT_LEVEL_1, state=pb.ACCOUNT_STATE_ACTIVE)
)
SIGNED_IN = pb.SignInResponse(session_token="session-abc", expire_time=EXPIRY)
VERIFIED = pb.VerifyResponse(
    verified=True,
    method=pb.VERIFICATION_METHOD_PASSWORD,
    level=pb.ACCOUNT_LEVEL_1,
    attributes=pb.CitizenAttributes(full_name="Nguyen Van [b]An", birth_date="1990-05-17"),
    verification_id="ver-7",
    verify_time=EXPIRY,
)
SHARED = pb.ShareViaQRResponse(
    share_id="share-9", token="header.payload.signature", expire_time=EXPIRY, qr_png=b"\x89PNG..."
)

REGISTER_ARGS = [
    "register",
    "--id",
    "001090001234",
    "--name",
    "Nguyen Van An",
    "--birth-date",
    "1990-05-17",
    "--gender",
    "male",
    "--phone",
    "0912345678",
    "--portrait",
    "face.f32",  # written by _clean_env into the test's own folder
]
PORTRAIT = struct.pack("<128f", *[0.25] * 128)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fresh_terminal(monkeypatch, columns=None)  # no person at the keyboard unless a test says so
    monkeypatch.chdir(tmp_path)
    (tmp_path / "face.f32").write_bytes(PORTRAIT)


@pytest.fixture
def fake() -> Iterator[tuple[FakeEid, str]]:
    eid = FakeEid(
        Register=REGISTERED,
        Activate=ACTIVATED,
        SignIn=SIGNED_IN,
        Verify=VERIFIED,
        ShareViaQR=SHARED,
    )
    with eid.serve() as target:
        yield eid, target


def test_register_prints_a_table(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]
) -> None:
    eid, target = fake
    assert main(["--target", target, *REGISTER_ARGS, "--email", "an@example.vn"]) == 0
    out = capsys.readouterr().out
    for expected in ("acc-42", "PENDING", "SMS +84 *** *** 678", "2030-03-1"):  # any local zone
        assert expected in out
    request = eid.only("Register").request
    assert (request.gender, request.email) == (pb.GENDER_MALE, "an@example.vn")
    assert request.portrait == PORTRAIT  # the file's bytes, as they are


FOREIGNER_ARGS = [
    "register",
    "--passport",
    "m12345678",
    "--nationality",
    "KOR",
    "--passport-issue-date",
    "2019-03-04",
    "--passport-issue-place",
    "Seoul",
    *REGISTER_ARGS[3:],
]


def test_a_foreigner_registers_with_a_passport_and_is_told_the_username(
    capsys: pytest.CaptureFixture[str],
) -> None:
    eid = FakeEid(Register=pb.RegisterResponse(personal_id="900000100001"))
    with eid.serve() as target:
        assert main(["--target", target, *FOREIGNER_ARGS]) == 0
    said = capsys.readouterr()
    assert "900000100001" in said.out
    assert "eid activate --id 900000100001" in said.err
    request = eid.only("Register").request
    assert request.personal_id == ""
    assert (request.passport.number, request.passport.nationality) == ("m12345678", "KOR")
    assert (request.passport.issue_date, request.passport.issue_place) == ("2019-03-04", "Seoul")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["register", "--id", "001090001234", *FOREIGNER_ARGS[1:]], "not both"),
        (FOREIGNER_ARGS[:3] + FOREIGNER_ARGS[5:], "--passport needs --nationality"),
        (["register", "--nationality", "KOR", *REGISTER_ARGS[3:]], "go with --passport"),
        (["register", *REGISTER_ARGS[3:]], "give --id (citizens) or --passport"),
        ([*REGISTER_ARGS[:-1], "missing.f32"], "cannot read the portrait missing.f32"),
    ],
)
def test_register_usage_errors_are_explained(
    args: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    eid = FakeEid(Register=REGISTERED)
    with eid.serve() as target:
        assert main(["--target", target, *args]) == 2
    assert said in capsys.readouterr().err
    assert eid.calls == []


def test_json_output_parses(fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]) -> None:
    _, target = fake
    assert main(["--target", target, "--json", *REGISTER_ARGS]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["account"]["account_id"] == "acc-42"
    assert data["account"]["state"] == "ACCOUNT_STATE_PENDING"
    assert data["delivery"]["masked_destination"] == "+84 *** *** 678"


def test_error_exits_1_with_reason_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    eid = FakeEid(Register=reject_with_rich_status)
    with eid.serve() as target:
        assert main(["--target", target, *REGISTER_ARGS]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert lines[0].startswith("error: FAILED_PRECONDITION REGISTRY_MISMATCH: ")
    assert "  full_name: does not match the registry" in lines
    assert "  birth_date: does not match the registry" in lines


def test_verify_needs_an_api_key(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]
) -> None:
    eid, target = fake
    code = main(["--target", target, "verify", "--id", "001090001234", "--password", PASSWORD])
    assert code == 2
    assert "--api-key" in capsys.readouterr().err
    assert eid.calls == []


def test_verify_prints_the_verdict(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    eid, target = fake
    monkeypatch.setenv("EID_PASSWORD", PASSWORD)
    # Global options are accepted after the subcommand too.
    assert main(["verify", "--id", "001090001234", "--target", target, "--api-key", "rp"]) == 0
    captured = capsys.readouterr()
    for expected in ("yes", "PASSWORD", "Nguyen Van [b]An", "1990-05-17", "ver-7"):
        assert expected in captured.out
    assert PASSWORD not in captured.out + captured.err
    call = eid.only("Verify")
    assert call.metadata["x-api-key"] == "rp"
    assert call.request.password.password == PASSWORD


def test_verify_json_shows_false_verdicts(capsys: pytest.CaptureFixture[str]) -> None:
    eid = FakeEid(Verify=pb.VerifyResponse(verified=False))
    with eid.serve() as target:
        argv = ["--target", target, "--api-key", "rp", "--json", "redeem", "tok"]
        assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["verified"] is False
    assert eid.only("Verify").request.qr_share.token == "tok"


def test_share_with_session_writes_the_png(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    eid, target = fake
    png = tmp_path / "share.png"
    argv = ["--target", target, "share", "--session", "tok-1", "--attributes", "full_name"]
    assert main([*argv, "--audience", "bank-a", "--ttl", "60", "--qr-out", str(png)]) == 0
    # Drawn by the CLI, not sent by the server: the image holds the token.
    assert qr.read_payloads(png) == ["header.payload.signature"]
    out = capsys.readouterr().out
    assert "share-9" in out
    assert "header.payload.signature\n" in out  # unwrapped, for copy and paste
    assert "▀" in out or "█" in out  # the QR drawn by segno
    call = eid.only("ShareViaQR")
    assert call.metadata["authorization"] == "Bearer tok-1"
    assert (list(call.request.attributes), call.request.ttl.seconds) == (
        [pb.ATTRIBUTE_FULL_NAME],
        60,
    )
    assert call.request.image_format == pb.QR_IMAGE_FORMAT_NONE


def test_share_signs_in_first_with_id(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]
) -> None:
    eid, target = fake
    argv = ["--target", target, "--json", "share", "--id", "001090001234", "--password", PASSWORD]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["share_id"] == "share-9"
    assert PASSWORD not in captured.out + captured.err
    assert eid.only("SignIn").request.password == PASSWORD
    share = eid.only("ShareViaQR")
    assert share.metadata["authorization"] == "Bearer session-abc"
    assert list(share.request.attributes) == [
        pb.ATTRIBUTE_FULL_NAME,
        pb.ATTRIBUTE_BIRTH_DATE,
        pb.ATTRIBUTE_GENDER,
    ]


def test_share_rejects_unknown_attributes(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]
) -> None:
    eid, target = fake
    argv = ["--target", target, "share", "--session", "s", "--attributes", "full_name,blood_type"]
    assert main(argv) == 2
    assert "blood_type" in capsys.readouterr().err
    assert eid.calls == []


def test_signin_prints_only_the_token_on_stdout(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, target = fake
    assert main(["--target", target, "signin", "--id", "001090001234", "--password", PASSWORD]) == 0
    captured = capsys.readouterr()
    assert captured.out == "session-abc\n"
    assert "expires" in captured.err


def test_activate_without_password_or_tty_exits_2(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]
) -> None:
    eid, target = fake
    assert main(["--target", target, "activate", "--id", "001090001234", "--code", "123456"]) == 2
    assert "no password given" in capsys.readouterr().err
    assert eid.calls == []


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("answers", "code"), [([PASSWORD, PASSWORD], 0), ([PASSWORD, "typo"], 2)])
def test_activate_prompts_twice_on_a_tty(
    fake: tuple[FakeEid, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    answers: list[str],
    code: int,
) -> None:
    eid, target = fake
    monkeypatch.setattr("sys.stdin", _Terminal())
    replies = iter(answers)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(replies))
    assert (
        main(["--target", target, "activate", "--id", "001090001234", "--code", "123456"]) == code
    )
    captured = capsys.readouterr()
    assert PASSWORD not in captured.out + captured.err
    if code == 0:
        assert "ACTIVE" in captured.out
        assert eid.only("Activate").request.new_password == PASSWORD
    else:
        assert "do not match" in captured.err
        assert eid.calls == []


def test_health(fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]) -> None:
    eid, target = fake
    assert main(["--target", target, "health"]) == 0
    assert capsys.readouterr().out == "SERVING\n"
    eid.health_status = 2
    assert main(["--target", target, "--json", "health"]) == 1
    assert json.loads(capsys.readouterr().out) == {"status": "NOT_SERVING"}


def test_unreachable_server_hints_at_the_target(capsys: pytest.CaptureFixture[str]) -> None:
    eid = FakeEid()
    with eid.serve() as target:
        pass  # the port is free again once the server has stopped
    assert main(["--target", target, "--timeout", "5", "health"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: UNAVAILABLE")
    assert f"Is the eid server running at {target}?" in err


def test_help_and_usage_errors_return_instead_of_exiting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--help"]) == 0
    assert "examples:" in capsys.readouterr().out
    assert main(["share", "--help"]) == 0
    assert "--qr-out" in capsys.readouterr().out
    assert main(["register", "--id", "1"]) == 2
    assert "required" in capsys.readouterr().err
