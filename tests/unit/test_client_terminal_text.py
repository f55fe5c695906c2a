"""What ``eid`` prints of text a relying party or anyone upstream chose (a
party's name, an approval note, attributes, error messages): it reaches the
terminal as text, never as control sequences that move the cursor, write the
clipboard, make links or reorder what the citizen or the clerk reads."""

from __future__ import annotations

import datetime
import io
import json
import unicodedata
from pathlib import Path

import grpc
import pytest
from google.protobuf import timestamp_pb2

from eid.v1 import identity_service_pb2 as pb
from eid_client.cli import main
from eid_client.offline import CredentialClaims, KeySet, VerificationKey, issue_credential
from tests.unit.client_cli_kit import fresh_terminal
from tests.unit.test_client_account_cli import refuse
from tests.unit.test_client_calls import FakeEid
from tests.unit.test_client_keys_cache import Signer, published

EXPIRY = timestamp_pb2.Timestamp(seconds=1_900_000_000)
# Cursor up two lines and erase it (overwrites an earlier verdict), an OSC 8
# hyperlink, an OSC 52 clipboard write, a C1 CSI, BiDi override, zero-width space.
HOSTILE = (
    "Bank\x1b[2A\x1b[2Kverified: yes"
    "\x1b]8;;https://evil.example\x07link\x1b]8;;\x07"
    "\x1b]52;c;cm0gLXJmIH4=\x07"
    "\x9b8m\u202eknaB\u200b\u2028end"
)


def unsafe(text: str) -> list[str]:
    """The characters of ``text`` a terminal acts on or hides, bar the line ends."""
    return [
        ch for ch in text if ch != "\n" and unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")
    ]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh_terminal(monkeypatch)


REQUEST = pb.ApprovalRequest(
    approval_id="apr_1",
    party_id="rp_shop",
    party_name=HOSTILE,
    message=HOSTILE,
    verification_code="4821",
    expire_time=EXPIRY,
    state=pb.APPROVAL_STATE_PENDING,
)


@pytest.mark.parametrize("columns", ["200", "40"])  # a table, or records when narrow
def test_pending_approvals_show_a_partys_name_and_note_as_text(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, columns: str
) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    page = pb.ListApprovalRequestsResponse(approval_requests=[REQUEST])
    with FakeEid(ListApprovalRequests=page).serve() as target:
        assert main(["--target", target, "approvals", "--session", "s"]) == 0
    out = capsys.readouterr().out
    assert unsafe(out) == []
    assert "\\x1b" in out and "\\u202e" in out  # shown, not hidden


def test_a_claimed_request_shows_the_party_as_text(capsys: pytest.CaptureFixture[str]) -> None:
    claimed = pb.ClaimApprovalResponse(approval_request=REQUEST)
    with FakeEid(ClaimApproval=claimed).serve() as target:
        assert main(["--target", target, "claim", "eid-apr.x", "--session", "s"]) == 0
    captured = capsys.readouterr()
    assert unsafe(captured.out + captured.err) == []
    assert "rp_shop" in captured.out


def test_access_history_shows_a_partys_name_as_text(capsys: pytest.CaptureFixture[str]) -> None:
    record = pb.AccessRecord(
        verification_id="evt_0",
        party_id="rp_shop",
        party_name=HOSTILE,
        method=pb.VERIFICATION_METHOD_QR_SHARE,
        verify_time=EXPIRY,
    )
    with FakeEid(ListAccessHistory=pb.ListAccessHistoryResponse(records=[record])).serve() as t:
        assert main(["--target", t, "history", "--session", "s"]) == 0
    assert unsafe(capsys.readouterr().out) == []


def test_released_attributes_are_shown_as_text(capsys: pytest.CaptureFixture[str]) -> None:
    answer = pb.VerifyResponse(
        verified=False,
        method=pb.VERIFICATION_METHOD_PASSWORD,
        attributes=pb.CitizenAttributes(full_name=HOSTILE, email=HOSTILE),
    )
    with FakeEid(Verify=answer).serve() as target:
        argv = ["--target", target, "--api-key", "k", "verify", "--id", "001090001234"]
        assert main([*argv, "--password", "pw"]) == 0
    out = capsys.readouterr().out
    assert unsafe(out) == []
    assert "no" in out.split("Verified", 1)[1].splitlines()[0]


def test_an_error_message_is_shown_as_text(capsys: pytest.CaptureFixture[str]) -> None:
    refusal = refuse(grpc.StatusCode.PERMISSION_DENIED, "PARTY_\x1b[2JX", HOSTILE)
    with FakeEid(ListAccessHistory=refusal).serve() as target:
        assert main(["--target", target, "history", "--session", "s"]) == 1
    err = capsys.readouterr().err
    assert unsafe(err) == []
    assert "\\x1b[2A" in err


@pytest.mark.parametrize("columns", ["200", "40"])  # a table, or records when narrow
def test_the_issuer_a_server_names_is_not_rich_markup(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    columns: str,
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", columns)
    answer = published(Signer("k1").listed())
    answer.issuer = "[link=https://evil.example]eid.vn[/link] [bold]\x1b[2J"
    with FakeEid(GetVerificationKeys=answer).serve() as target:
        assert main(["--target", target, "keys"]) == 0
    out = "".join(capsys.readouterr().out.split())  # as wrapped to any width
    assert "issuer[link=https://evil.example]eid.vn[/link][bold]\\x1b[2J;" in out


def test_json_keeps_the_raw_values_and_no_raw_controls(
    capsys: pytest.CaptureFixture[str],
) -> None:
    page = pb.ListApprovalRequestsResponse(approval_requests=[REQUEST])
    with FakeEid(ListApprovalRequests=page).serve() as target:
        assert main(["--target", target, "--json", "approvals", "--session", "s"]) == 0
    out = capsys.readouterr().out
    assert unsafe(out) == []  # C1 controls and BiDi characters as \u escapes, too
    (request,) = json.loads(out)["approval_requests"]
    assert (request["party_name"], request["message"]) == (HOSTILE, HOSTILE)


def test_json_of_an_offline_share_keeps_raw_values_and_no_raw_controls(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """verify-qr/verify-offline --json print the credential's text unescaped
    (ensure_ascii=False, for Vietnamese names): C1 controls and BiDi characters
    must still reach the terminal as \\u escapes."""
    signer = Signer("k1")
    keys = tmp_path / "keys.json"
    keys.write_text(KeySet([VerificationKey("k1", signer.public)]).to_json())
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    name = "Nguyễn Thị Lan\u202e\x9b8m\u200b"
    claims = CredentialClaims(
        issuer="eid.vn",
        share_id="shr_" + "0a" * 10,
        issued_at=now,
        expires_at=now + datetime.timedelta(minutes=5),
        audience=None,
        full_name=name,
    )
    payload = issue_credential(claims, "k1", signer.private)
    monkeypatch.setattr("sys.stdin", io.StringIO(payload + "\n"))
    argv = ["--target", "127.0.0.1:1", "--json", "verify-offline", "-", "--keys", str(keys)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert unsafe(out) == []
    assert "Nguyễn Thị Lan" in out  # still readable
    assert json.loads(out)["attributes"]["full_name"] == name


def test_pending_approvals_name_the_party_by_its_id_too(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A party chooses its name (another bank's, say); its id is the server's."""
    lookalike = pb.ApprovalRequest(
        approval_id="apr_2", party_id="rp_7b2b3ca8", party_name="Vietcombank", expire_time=EXPIRY
    )
    page = pb.ListApprovalRequestsResponse(approval_requests=[lookalike])
    with FakeEid(ListApprovalRequests=page).serve() as target:
        assert main(["--target", target, "approvals", "--session", "s"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "apr_2" in line)
    assert "Vietcombank (rp_7b2b3ca8)" in row
