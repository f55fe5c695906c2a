"""The sandbox's parts that need no server: the message when eid-server is not
installed, and reading codes from an outbox file (tests/e2e/test_sandbox.py
runs a real one)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from eid_client import sandbox
from eid_client._sandbox_data import read_outbox, same_destination, wait_for_code


def test_without_the_server_package_the_sandbox_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "eid_service" else real(name, *a),
    )
    with pytest.raises(sandbox.SandboxError, match=r"not installed.*eid-service"):
        sandbox.Sandbox()


@pytest.mark.parametrize(
    ("typed", "stored", "same"),
    [
        ("0912345678", "+84912345678", True),
        ("+84 912 345 678", "+84912345678", True),
        ("0912345679", "+84912345678", False),
        ("Lan@Example.vn", "lan@example.vn", True),
        ("lan@example.vn", "+84912345678", False),
    ],
)
def test_a_phone_matches_as_typed_or_in_e164(typed: str, stored: str, same: bool) -> None:
    assert same_destination(typed, stored) is same


def _write(outbox: Path, *messages: dict[str, str]) -> None:
    with outbox.open("a", encoding="utf-8") as f:
        for m in messages:
            f.write(json.dumps({"channel": "sms", "kind": "verify_code", **m}) + "\n")


def test_the_newest_code_to_that_phone_past_after_is_read(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.log"
    _write(
        outbox,
        {"to": "+84912345678", "body": "Your code is 111111"},
        {"to": "+84987654321", "body": "Your code is 222222"},
        {"to": "+84912345678", "body": "Your code is 333333"},
        {"to": "+84912345678", "body": "Your account was locked"},
    )
    assert wait_for_code(outbox, "0912345678", after=0, timeout=0) == "333333"
    assert wait_for_code(outbox, "0987654321", after=0, timeout=0) == "222222"
    assert [m.to for m in read_outbox(outbox)][:2] == ["+84912345678", "+84987654321"]
    with pytest.raises(LookupError) as caught:
        wait_for_code(outbox, "0987654321", after=2, timeout=0.1)
    assert "0987654321" not in str(caught.value)  # no phone in an error


def test_no_outbox_yet_is_no_messages(tmp_path: Path) -> None:
    assert read_outbox(tmp_path / "none.log") == []


def test_a_message_still_being_written_is_left_for_the_next_read(tmp_path: Path) -> None:
    # The server appends each message as one line; a read can land in the
    # middle of one, here even in the middle of a character ("ễ").
    outbox = tmp_path / "outbox.log"
    _write(outbox, {"to": "+84912345678", "body": "Your code is 111111"})
    message = {"to": "+84912345678", "body": "Mã của bạn là 222222: Nguyễn"}
    line = json.dumps(message, ensure_ascii=False) + "\n"  # as the server writes it
    raw = line.encode("utf-8")
    cut = raw.index("ễ".encode()) + 1
    with outbox.open("ab") as f:
        f.write(raw[:cut])
    assert [m.body for m in read_outbox(outbox)] == ["Your code is 111111"]
    assert wait_for_code(outbox, "0912345678", after=0, timeout=0) == "111111"
    with outbox.open("ab") as f:
        f.write(raw[cut:])
    assert wait_for_code(outbox, "0912345678", after=0, timeout=0) == "222222"
