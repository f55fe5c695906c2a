"""The SDK's and CLI's mode-lock requests, without a server (the calls
themselves: tests/integration/test_mode_locks.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from eid.v1 import identity_service_pb2 as pb
from eid_client._mode_lock_calls import lock_request, parse_lockable_mode, unlock_request
from eid_client.cli import build_parser, main


@pytest.mark.parametrize(
    "given", ["one_time_code", "otp", " OTP ", "VERIFICATION_METHOD_ONE_TIME_CODE", 3]
)
def test_a_mode_is_named_as_the_citizen_would(given: str | int) -> None:
    assert parse_lockable_mode(given) == pb.VERIFICATION_METHOD_ONE_TIME_CODE


def test_qr_share_and_unknown_modes_are_refused_before_sending() -> None:
    for name in ("qr_share", "sms", ""):
        with pytest.raises(ValueError, match="use password, one_time_code, approval"):
            parse_lockable_mode(name)


def test_requests_carry_a_request_id_and_the_temporary_unlock() -> None:
    lock = lock_request("password", None)
    assert lock.mode == pb.VERIFICATION_METHOD_PASSWORD and len(lock.request_id) == 36
    assert not unlock_request("password", None, "r-1").HasField("unlock_for")
    temporary = unlock_request("demographic", 10, "r-1")
    assert temporary.unlock_for.ToTimedelta() == timedelta(minutes=10)
    assert temporary.request_id == "r-1"


def test_the_cli_takes_whole_minutes_within_a_day(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["unlock-mode", "otp", "--minutes", "10"])
    assert (args.mode, args.minutes) == ("otp", 10)
    for bad in ("0", "1441", "ten"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["unlock-mode", "otp", "--minutes", bad])
    assert "1 to 1440 minutes" in capsys.readouterr().err


def test_help_shows_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["unlock-mode", "--help"]) == 0
    shown = capsys.readouterr().out
    assert "eid unlock-mode one_time_code --minutes 10" in shown
    assert "AUTH_MODE_LOCKED" in shown
    assert main(["--help"]) == 0
    assert "eid lock-mode one_time_code" in capsys.readouterr().out
