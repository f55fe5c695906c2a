"""``eid webhook`` (a party's status webhook: show, set, remove, with its API
key) and ``eid verify-event`` (a received event checked with the published
keys): what each sends, prints and exits with."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from google.protobuf import timestamp_pb2

from eid.v1 import identity_service_pb2 as pb
from eid_client.cli import main
from eid_client.status_events import encode_status_event, sign_status_event
from tests.unit.client_cli_kit import fresh_terminal
from tests.unit.test_client_calls import FakeEid
from tests.unit.test_client_keys_cache import Signer, published

PARTY = "rp_0123456789abcdef"
URL = "https://bank.example/eid/events"
SET_AT = timestamp_pb2.Timestamp(seconds=1_764_000_000)
SIGNER = Signer("k2")


@pytest.fixture(autouse=True)
def _clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    fresh_terminal(monkeypatch)


def _set(request: pb.SetStatusWebhookRequest, context: object) -> pb.SetStatusWebhookResponse:
    if not request.url:
        return pb.SetStatusWebhookResponse()
    return pb.SetStatusWebhookResponse(
        webhook=pb.StatusWebhook(url=request.url, update_time=SET_AT)
    )


@pytest.fixture
def server() -> Iterator[tuple[FakeEid, str]]:
    eid = FakeEid(
        SetStatusWebhook=_set,
        GetStatusWebhook=pb.GetStatusWebhookResponse(),
        GetVerificationKeys=published(SIGNER.listed()),
    )
    with eid.serve() as target:
        yield eid, target


def test_a_party_sets_reads_and_clears_its_webhook(
    server: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]
) -> None:
    eid, target = server
    assert main(["--target", target, "--api-key", "k", "webhook", "--url", URL]) == 0
    shown = capsys.readouterr().out
    assert URL in shown and "2025-11-24T16:00:00Z" in shown
    call = eid.only("SetStatusWebhook")
    assert (call.request.url, call.metadata["x-api-key"]) == (URL, "k")
    assert call.request.request_id  # a fresh one, to retry safely

    assert main(["--target", target, "--api-key", "k", "webhook"]) == 0
    assert "none: set one with --url" in capsys.readouterr().out
    assert main(["--target", target, "--api-key", "k", "--json", "webhook", "--clear"]) == 0
    assert json.loads(capsys.readouterr().out) == {}
    assert [c.request.url for c in eid.calls if c.method == "SetStatusWebhook"] == [URL, ""]


def test_without_an_api_key_nothing_is_sent(
    server: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]
) -> None:
    eid, target = server
    assert main(["--target", target, "webhook", "--url", URL]) == 2
    assert "--api-key" in capsys.readouterr().err
    assert eid.calls == []


def _event(tmp_path: Path) -> tuple[Path, str]:
    body = encode_status_event(
        event_id="evt_1",
        type="account.locked",
        subject="sub_" + "q" * 32,
        audience=PARTY,
        issuer="eid.vn",
        time=datetime(2026, 11, 25, 8, 30, tzinfo=UTC),
    )
    path = tmp_path / "body.json"
    path.write_bytes(body)
    return path, sign_status_event(body, SIGNER.key_id, SIGNER.private, datetime.now(UTC))


def test_a_received_event_is_checked_with_the_published_keys(
    server: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, target = server
    body, signature = _event(tmp_path)
    argv = ["--target", target, "verify-event", str(body), "--signature", signature]
    assert main([*argv, "--audience", PARTY]) == 0
    shown = capsys.readouterr().out
    assert "genuine" in shown and "account.locked" in shown and "evt_1" in shown

    assert main(["--target", target, "--json", *argv[2:]]) == 0
    assert json.loads(capsys.readouterr().out)["type"] == "account.locked"

    assert main([*argv, "--audience", "rp_other"]) == 1
    assert "EVENT_AUDIENCE_MISMATCH" in capsys.readouterr().err
    body.write_bytes(body.read_bytes().replace(b"locked", b"unlocked"))
    assert main(argv) == 1
    assert "EVENT_SIGNATURE_INVALID" in capsys.readouterr().err


def test_an_old_capture_is_stale_unless_allowed(
    server: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, target = server
    body, _ = _event(tmp_path)
    old = sign_status_event(
        body.read_bytes(), SIGNER.key_id, SIGNER.private, datetime(2026, 1, 1, tzinfo=UTC)
    )
    argv = ["--target", target, "verify-event", str(body), "--signature", old]
    assert main(argv) == 1
    assert "EVENT_STALE" in capsys.readouterr().err
    assert main([*argv, "--max-age", str(10 * 365 * 86400)]) == 0
