"""The account's-life commands of the ``eid`` CLI against a fake server: codes,
sessions, sign-out, lock and unlock; tables, JSON, errors, and secrets never printed."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2, timestamp_pb2
from google.rpc import (  # type: ignore[import-untyped, unused-ignore]
    error_details_pb2,
    status_pb2,
)
from grpc_status import rpc_status

from eid.v1 import identity_service_pb2 as pb
from eid_client.cli import main
from tests.unit.client_cli_kit import fresh_terminal
from tests.unit.test_client_account_calls import paged
from tests.unit.test_client_calls import FakeEid

PID = "001090001234"
PASSWORD = "s3cret-password"
OFFICER_KEY = "officer-key-do-not-print"
T0 = timestamp_pb2.Timestamp(seconds=1_900_000_000)
DELIVERY = pb.ActivationDelivery(
    channel=pb.DELIVERY_CHANNEL_EMAIL, masked_destination="a***@example.vn", expire_time=T0
)
SIGNED_IN = pb.SignInResponse(
    session_token="access-abc",
    refresh_token="refresh-do-not-print",
    session_id="ses_0001",
    expire_time=T0,
)
LOCKED = pb.LockAccountResponse(
    account=pb.Account(account_id="acc-42", state=pb.ACCOUNT_STATE_LOCKED), newly_locked=True
)
UNLOCKED = pb.UnlockAccountResponse(
    account=pb.Account(account_id="acc-42", state=pb.ACCOUNT_STATE_ACTIVE)
)
SESSIONS = pb.ListSessionsResponse(
    sessions=[
        pb.Session(
            session_id="ses_aaaaaaaaaaaaaaaaaaaaaaaa",
            device_name="Pixel [b]8",
            create_time=T0,
            last_use_time=timestamp_pb2.Timestamp(seconds=1_900_000_600),
            expire_time=timestamp_pb2.Timestamp(seconds=1_902_592_600),
            current=True,
        ),
        pb.Session(session_id="ses_bbbbbbbbbbbbbbbbbbbbbbbb", create_time=T0),
    ]
)


def refuse(code: grpc.StatusCode, reason: str, message: str) -> Callable[..., Any]:
    """A responder failing with the rich error model, as eid does."""

    def behaviour(request: Any, context: grpc.ServicerContext) -> Any:
        info = any_pb2.Any()
        info.Pack(error_details_pb2.ErrorInfo(reason=reason, domain="eid.v1"))
        status = status_pb2.Status(code=code.value[0], message=message, details=[info])
        context.abort_with_status(rpc_status.to_status(status))

    return behaviour


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh_terminal(monkeypatch, columns=160)  # wide enough for the sessions table


@pytest.fixture
def fake() -> Iterator[tuple[FakeEid, str]]:
    eid = FakeEid(
        SignIn=SIGNED_IN,
        ResendActivationCode=pb.ResendActivationCodeResponse(delivery=DELIVERY),
        SendAccountCode=pb.SendAccountCodeResponse(delivery=DELIVERY),
        ListSessions=SESSIONS,
        RevokeSession=pb.RevokeSessionResponse(),
        SignOut=pb.SignOutResponse(),
        LockAccount=LOCKED,
        UnlockAccount=UNLOCKED,
    )
    with eid.serve() as target:
        yield eid, target


def run(target: str, *argv: str) -> int:
    return main(["--target", target, *argv])


def test_resend_code_prints_where_it_went(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]
) -> None:
    eid, target = fake
    assert run(target, "resend-code", "--personal-id", PID, "--email", "an@example.vn") == 0
    captured = capsys.readouterr()
    assert "EMAIL a***@example.vn" in captured.out
    assert "2030-03-1" in captured.out  # the code's expiry, in any local zone
    assert f"eid activate --id {PID}" in captured.err
    request = eid.only("ResendActivationCode").request
    assert (request.personal_id, request.email, request.phone_number) == (PID, "an@example.vn", "")
    assert len(request.request_id) == 36


def test_resend_code_needs_a_phone_or_an_email(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]
) -> None:
    eid, target = fake
    assert run(target, "resend-code", "--id", PID) == 2
    assert "--phone" in capsys.readouterr().err
    both = ["--phone", "0912345678", "--email", "a@b.vn"]
    assert run(target, "resend-code", "--id", PID, *both) == 2
    assert eid.calls == []


@pytest.mark.parametrize(
    ("purpose", "expected", "next_step"),
    [
        ("lock", pb.ACCOUNT_CODE_PURPOSE_LOCK, "eid lock --id"),
        ("unlock", pb.ACCOUNT_CODE_PURPOSE_UNLOCK, "eid unlock --id"),
    ],
)
def test_send_code(
    fake: tuple[FakeEid, str],
    capsys: pytest.CaptureFixture[str],
    purpose: str,
    expected: int,
    next_step: str,
) -> None:
    eid, target = fake
    argv = ["send-code", purpose, "--id", PID, "--phone", "0912345678", "--request-id", "r-1"]
    assert run(target, *argv) == 0
    captured = capsys.readouterr()
    assert "a***@example.vn" in captured.out
    assert next_step in captured.err
    request = eid.only("SendAccountCode").request
    assert (request.purpose, request.phone_number, request.request_id) == (
        expected,
        "0912345678",
        "r-1",
    )


def test_send_code_rejects_other_purposes(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]
) -> None:
    eid, target = fake
    assert run(target, "send-code", "activation", "--id", PID, "--phone", "0912345678") == 2
    assert "invalid choice" in capsys.readouterr().err
    assert eid.calls == []


def test_sign_in_with_a_device_name_prints_only_the_access_token(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    eid, target = fake
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    argv = ["sign-in", "--id", PID, "--password-stdin", "--device-name", "Lan's laptop"]
    assert run(target, *argv) == 0
    captured = capsys.readouterr()
    assert captured.out == "access-abc\n"
    assert "ses_0001" in captured.err
    for secret in (PASSWORD, "refresh-do-not-print"):
        assert secret not in captured.out + captured.err
    request = eid.only("SignIn").request
    assert (request.device_name, request.password) == ("Lan's laptop", PASSWORD)


def test_sessions_table(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    eid, target = fake
    monkeypatch.setenv("EID_SESSION", "access-abc")
    assert run(target, "sessions") == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(line for line in lines if "Session ID" in line)
    for column in ("Device", "Signed in", "Last used", "Expires"):
        assert column in header
    current = next(line for line in lines if "ses_aaaaaaaaaaaaaaaaaaaaaaaa" in line)
    other = next(line for line in lines if "ses_bbbbbbbbbbbbbbbbbbbbbbbb" in line)
    assert current.lstrip().startswith("*") and "Pixel [b]8" in current  # not rich markup
    assert not other.lstrip().startswith("*")
    assert " - " in other  # no device name, no last use
    assert "2030-03-" in current
    assert "* this session" in out
    assert eid.only("ListSessions").metadata["authorization"] == "Bearer access-abc"


def test_sessions_in_a_narrow_terminal_are_records(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, target = fake
    monkeypatch.setenv("COLUMNS", "60")
    assert run(target, "sessions", "--session", "access-abc") == 0
    lines = capsys.readouterr().out.splitlines()
    # Whole IDs, never cut: they are copied into revoke-session.
    assert "* ses_aaaaaaaaaaaaaaaaaaaaaaaa" in lines
    assert "ses_bbbbbbbbbbbbbbbbbbbbbbbb" in lines
    assert any(line.split()[:1] == ["Expires"] for line in lines)


def test_sessions_follows_every_page(capsys: pytest.CaptureFixture[str]) -> None:
    eid = FakeEid(ListSessions=paged(5))
    with eid.serve() as target:
        argv = ["--json", "sessions", "--session-token", "t", "--page-size", "2"]
        assert run(target, *argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert [s["session_id"] for s in data["sessions"]] == ["s0", "s1", "s2", "s3", "s4"]
    assert [c.request.page_token for c in eid.calls] == ["", "2", "4"]
    assert {c.request.page_size for c in eid.calls} == {2}


@pytest.mark.parametrize(
    "argv",
    [["sessions"], ["revoke-session", "ses_1"], ["sign-out"], ["lock"]],
)
def test_session_commands_need_a_session(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    eid, target = fake
    assert run(target, *argv) == 2
    assert "EID_SESSION" in capsys.readouterr().err
    assert eid.calls == []


def test_revoke_session(fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]) -> None:
    eid, target = fake
    argv = ["revoke-session", "ses_bbbb", "--session", "access-abc", "--request-id", "rv"]
    assert run(target, *argv) == 0
    assert capsys.readouterr().out == "Session ses_bbbb ended.\n"
    call = eid.only("RevokeSession")
    assert (call.request.session_id, call.request.request_id) == ("ses_bbbb", "rv")
    assert call.metadata["authorization"] == "Bearer access-abc"


@pytest.mark.parametrize("command", ["sign-out", "signout"])
def test_sign_out(
    fake: tuple[FakeEid, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: str,
) -> None:
    eid, target = fake
    monkeypatch.setenv("EID_SESSION", "access-abc")
    assert run(target, command) == 0
    assert capsys.readouterr().out == "Signed out.\n"
    assert eid.only("SignOut").metadata["authorization"] == "Bearer access-abc"
    assert run(target, "--json", command) == 0
    assert json.loads(capsys.readouterr().out) == {}


def test_lock_with_the_session(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    eid, target = fake
    monkeypatch.setenv("EID_SESSION", "access-abc")
    monkeypatch.setenv("EID_PASSWORD", PASSWORD)  # not used: no --id
    assert run(target, "lock") == 0
    captured = capsys.readouterr()
    assert "LOCKED" in captured.out and "Newly locked" in captured.out
    assert "send-code unlock" in captured.err
    call = eid.only("LockAccount")
    assert call.request.WhichOneof("proof") is None
    assert call.metadata["authorization"] == "Bearer access-abc"


def test_lock_with_password_from_stdin(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    eid, target = fake
    monkeypatch.setenv("EID_SESSION", "access-abc")  # --id wins: the password is the proof
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\r\n"))
    assert run(target, "--json", "lock", "--id", PID, "--password-stdin") == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["newly_locked"] is True
    assert PASSWORD not in captured.out + captured.err
    call = eid.only("LockAccount")
    assert call.request.password == pb.LockWithPassword(personal_id=PID, password=PASSWORD)
    assert "authorization" not in call.metadata


def test_lock_with_a_code(fake: tuple[FakeEid, str]) -> None:
    eid, target = fake
    assert run(target, "lock", "--id", PID, "--code", "123456") == 0
    call = eid.only("LockAccount")
    assert call.request.one_time_code == pb.LockWithCode(personal_id=PID, one_time_code="123456")
    assert "authorization" not in call.metadata


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["lock", "--code", "123456"], "needs --id"),
        (["lock", "--id", PID, "--code", "1", "--password", PASSWORD], "not both"),
        (["lock", "--password", PASSWORD, "--session", "s"], "goes with --id"),
        (["lock", "--id", PID], "no password given"),  # no --password, no env, no terminal
        (["lock", "--id", PID, "--password-stdin"], "no password on standard input"),
    ],
)
def test_lock_usage_errors(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    eid, target = fake
    assert run(target, *argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert PASSWORD not in err
    assert eid.calls == []


def test_unlock_by_officer_reads_the_key_from_the_named_variable(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    eid, target = fake
    monkeypatch.setenv("DESK_KEY", OFFICER_KEY)
    assert run(target, "unlock", "--id", PID, "--officer-key-env", "DESK_KEY") == 0
    captured = capsys.readouterr()
    assert "ACTIVE" in captured.out
    assert OFFICER_KEY not in captured.out + captured.err
    call = eid.only("UnlockAccount")
    assert call.request.officer == pb.UnlockByOfficer(personal_id=PID)
    assert call.metadata["x-officer-key"] == OFFICER_KEY


def test_unlock_by_officer_without_the_variable(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]
) -> None:
    eid, target = fake
    assert run(target, "unlock", "--id", PID, "--officer-key-env", "DESK_KEY") == 2
    assert "DESK_KEY" in capsys.readouterr().err
    assert run(target, "unlock", "--id", PID, "--code", "1", "--officer-key-env", "DESK_KEY") == 2
    assert "not allowed with" in capsys.readouterr().err
    assert run(target, "unlock", "--id", PID) == 2  # neither
    assert eid.calls == []


def test_unlock_by_citizen_with_code_and_password(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    eid, target = fake
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    argv = ["unlock", "--id", PID, "--code", "654321", "--password-stdin", "--request-id", "u"]
    assert run(target, *argv) == 0
    captured = capsys.readouterr()
    assert "ACTIVE" in captured.out
    assert PASSWORD not in captured.out + captured.err
    call = eid.only("UnlockAccount")
    assert call.request.citizen == pb.UnlockByCitizen(
        personal_id=PID, one_time_code="654321", password=PASSWORD
    )
    assert call.request.request_id == "u"
    assert "x-officer-key" not in call.metadata


def test_errors_show_code_reason_and_message(capsys: pytest.CaptureFixture[str]) -> None:
    eid = FakeEid(
        LockAccount=refuse(
            grpc.StatusCode.INVALID_ARGUMENT, "ONE_TIME_CODE_INVALID", "the code is wrong"
        ),
        ResendActivationCode=refuse(
            grpc.StatusCode.RESOURCE_EXHAUSTED, "CODE_RATE_LIMITED", "wait a minute"
        ),
    )
    with eid.serve() as target:
        assert run(target, "lock", "--id", PID, "--code", "000000") == 1
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.startswith(
            "error: INVALID_ARGUMENT ONE_TIME_CODE_INVALID: the code is wrong"
        )
        assert run(target, "resend-code", "--id", PID, "--phone", "0912345678") == 1
        assert capsys.readouterr().err.startswith(
            "error: RESOURCE_EXHAUSTED CODE_RATE_LIMITED: wait a minute"
        )


def test_an_expired_session_hints_at_signing_in_again(capsys: pytest.CaptureFixture[str]) -> None:
    eid = FakeEid(
        ListSessions=refuse(grpc.StatusCode.UNAUTHENTICATED, "SESSION_INVALID", "sign in again")
    )
    with eid.serve() as target:
        assert run(target, "sessions", "--session", "old") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: UNAUTHENTICATED SESSION_INVALID: sign in again")
    assert "eid signin --id" in err


def test_client_side_refusals_are_usage_errors(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]
) -> None:
    eid, target = fake
    assert run(target, "revoke-session", "", "--session", "s") == 2
    assert capsys.readouterr().err.startswith("error: pass the session_id")
    assert eid.calls == []


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("resend-code", "--email"),
        ("send-code", "{lock,unlock}"),
        ("sessions", "--page-size"),
        ("revoke-session", "SESSION_ID"),
        ("sign-out", "--session"),
        ("lock", "--password-stdin"),
        ("unlock", "--officer-key-env"),
        ("sign-in", "--device-name"),
    ],
)
def test_help_has_examples(capsys: pytest.CaptureFixture[str], command: str, expected: str) -> None:
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    assert expected in out
