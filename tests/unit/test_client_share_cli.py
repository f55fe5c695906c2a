"""The citizen's share commands of the ``eid`` CLI against a fake server: share
(modes, images drawn locally), shares and revoke-share; tables, JSON, errors."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import timestamp_pb2

from eid.v1 import identity_service_pb2 as pb
from eid_client import qr
from eid_client.cli import main
from tests.unit.client_cli_kit import fresh_terminal
from tests.unit.test_client_calls import FakeEid
from tests.unit.test_client_share_calls import paged_shares

T0 = timestamp_pb2.Timestamp(seconds=1_900_000_000)
T1 = timestamp_pb2.Timestamp(seconds=1_900_000_300)
# Base45 characters only, as an offline payload is (spaces included).
OFFLINE_PAYLOAD = "NCFOXN%TS3DH3ZSUZK+.V0ETD%65NL-AH8R7A4"
SHARED = pb.ShareViaQRResponse(
    share_id="shr_0123456789abcdef0123",
    token=OFFLINE_PAYLOAD,
    expire_time=T1,
    mode=pb.SHARE_MODE_OFFLINE,
    key_id="k_abcd",
)
SHARES = pb.ListSharesResponse(
    shares=[
        pb.Share(
            share_id="shr_0123456789abcdef0123",
            mode=pb.SHARE_MODE_OFFLINE,
            attributes=[pb.ATTRIBUTE_PERSONAL_ID, pb.ATTRIBUTE_FULL_NAME],
            audience_party_id="rp_0123456789abcdef",
            create_time=T0,
            expire_time=T1,
            state=pb.SHARE_STATE_ACTIVE,
        ),
        pb.Share(
            share_id="shr_ffffffffffffffffffffffffffffffff",
            mode=pb.SHARE_MODE_ONLINE,
            attributes=[pb.ATTRIBUTE_BIRTH_DATE],
            create_time=T0,
            expire_time=T1,
            multi_use=True,
            state=pb.SHARE_STATE_REVOKED,
            redeem_count=2,
        ),
    ]
)


def revoked(share: pb.Share, state: int = pb.SHARE_STATE_REVOKED) -> pb.RevokeShareResponse:
    out = pb.RevokeShareResponse(share=share)
    out.share.state = state  # type: ignore[assignment]
    if state == pb.SHARE_STATE_REVOKED:
        out.share.revoke_time.CopyFrom(T1)
    return out


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh_terminal(monkeypatch)  # wide enough for the shares table


@pytest.fixture
def fake() -> Iterator[tuple[FakeEid, str]]:
    eid = FakeEid(
        ShareViaQR=SHARED,
        ListShares=SHARES,
        RevokeShare=revoked(SHARES.shares[0]),
    )
    with eid.serve() as target:
        yield eid, target


def run(target: str, *argv: str) -> int:
    return main(["--target", target, *argv])


def test_offline_multi_use_share_draws_png_and_svg_locally(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    eid, target = fake
    png, svg = tmp_path / "share.png", tmp_path / "share.svg"
    argv = ["share", "--session", "access-1", "--offline", "--multi-use", "--no-qr"]
    assert run(target, *argv, "--png", str(png), "--svg", str(svg)) == 0
    assert qr.read_payloads(png) == [OFFLINE_PAYLOAD]
    assert b"<svg" in svg.read_bytes()
    captured = capsys.readouterr()
    for expected in ("OFFLINE", "multi-use until expiry", "k_abcd", str(png), str(svg)):
        assert expected in captured.out
    assert captured.out.endswith(OFFLINE_PAYLOAD + "\n")  # unwrapped, for copy and paste
    assert "eid verify-qr" in captured.err
    request = eid.only("ShareViaQR").request
    assert (request.mode, request.multi_use) == (pb.SHARE_MODE_OFFLINE, True)
    assert request.image_format == pb.QR_IMAGE_FORMAT_NONE  # no image over the wire


def test_share_defaults_to_online_single_use(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]
) -> None:
    eid, target = fake
    assert run(target, "--json", "share", "--session", "access-1") == 0
    assert json.loads(capsys.readouterr().out)["key_id"] == "k_abcd"
    request = eid.only("ShareViaQR").request
    assert (request.mode, request.multi_use) == (pb.SHARE_MODE_ONLINE, False)


def test_an_image_that_cannot_be_written_still_prints_the_share(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, target = fake
    missing = tmp_path / "no such folder" / "share.png"
    assert run(target, "share", "--session", "access-1", "--no-qr", "--png", str(missing)) == 1
    captured = capsys.readouterr()
    assert f"error: cannot write {missing}" in captured.err
    assert OFFLINE_PAYLOAD in captured.out  # the share exists: the citizen can still use it


def test_share_images_are_private_and_never_written_through_a_planted_link(
    fake: tuple[FakeEid, str], tmp_path: Path
) -> None:
    """An image holds the share's token (an offline one the citizen's data): only
    its owner may read it, and a link planted at its path (a shared /tmp) is
    replaced, not followed into the file it names."""
    _, target = fake
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    png, svg = tmp_path / "share.png", tmp_path / "share.svg"
    png.symlink_to(victim)
    argv = ["share", "--session", "access-1", "--no-qr", "--png", str(png), "--svg", str(svg)]
    assert run(target, *argv) == 0
    assert victim.read_text() == "keep"
    assert not png.is_symlink() and qr.read_payloads(png) == [OFFLINE_PAYLOAD]
    for image in (png, svg):
        assert stat.S_IMODE(image.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["share.png", "share.svg", "victim.txt"]


def test_shares_table(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    eid, target = fake
    monkeypatch.setenv("EID_SESSION", "access-1")
    assert run(target, "shares", "--page-size", "50") == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    header = next(line for line in lines if "Share ID" in line)
    for column in ("Mode", "State", "Attributes", "Audience", "Created", "Expires", "Redeemed"):
        assert column in header
    offline = next(line for line in lines if "shr_0123456789abcdef0123" in line)
    online = next(line for line in lines if "shr_ffffffffffffffffffffffffffffffff" in line)
    for expected in ("OFFLINE", "ACTIVE", "personal_id, full_name", "rp_0123456789abcdef"):
        assert expected in offline
    for expected in ("ONLINE", "REVOKED", "birth_date", "any", "2 (multi)"):
        assert expected in online
    assert "2030-03-" in offline
    assert "eid revoke-share" in captured.err
    call = eid.only("ListShares")
    assert (call.request.page_size, call.metadata["authorization"]) == (50, "Bearer access-1")


def test_shares_follows_every_page_and_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    eid = FakeEid(ListShares=paged_shares(5))
    with eid.serve() as target:
        assert run(target, "--json", "shares", "--session", "access-1") == 0
    data = json.loads(capsys.readouterr().out)
    assert [s["share_id"] for s in data["shares"]] == [f"shr_{i}" for i in range(5)]
    assert data["shares"][0]["redeem_count"] == 0  # defaults are printed too
    assert len(eid.calls) == 3


def test_no_shares(capsys: pytest.CaptureFixture[str]) -> None:
    eid = FakeEid(ListShares=pb.ListSharesResponse())
    with eid.serve() as target:
        assert run(target, "shares", "--session", "access-1") == 0
    assert capsys.readouterr().out == "No shares.\n"


@pytest.mark.parametrize("argv", [["shares"], ["revoke-share", "shr_1"]])
def test_citizen_commands_need_a_session(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    eid, target = fake
    assert run(target, *argv) == 2
    assert "EID_SESSION" in capsys.readouterr().err
    assert eid.calls == []


def test_revoke_offline_share_says_offline_verifiers_cannot_know(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]
) -> None:
    eid, target = fake
    argv = ["revoke-share", "shr_0123456789abcdef0123", "--session", "access-1"]
    assert run(target, *argv, "--request-id", "rv-1") == 0
    captured = capsys.readouterr()
    assert "REVOKED" in captured.out and "Revoked" in captured.out
    assert "An offline verifier cannot learn of this" in captured.err
    assert "2030-03-" in captured.err  # until when the QR still checks offline
    request = eid.only("RevokeShare").request
    assert (request.share_id, request.request_id) == ("shr_0123456789abcdef0123", "rv-1")


def test_revoking_an_expired_share_changes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    eid = FakeEid(RevokeShare=revoked(SHARES.shares[1], pb.SHARE_STATE_EXPIRED))
    with eid.serve() as target:
        assert run(target, "revoke-share", "shr_f", "--session", "access-1") == 0
        captured = capsys.readouterr()
        assert "It was EXPIRED already" in captured.err
        assert run(target, "--json", "revoke-share", "shr_f", "--session", "access-1") == 0
    assert json.loads(capsys.readouterr().out)["share"]["state"] == "SHARE_STATE_EXPIRED"


def test_share_help_lists_the_new_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["share", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--offline", "--multi-use", "--png", "--svg", "--qr-out"):
        assert option in out
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("shares", "revoke-share", "eid share --offline"):
        assert command in out


def test_a_guardian_lists_and_withdraws_a_dependants_shares(
    capsys: pytest.CaptureFixture[str],
) -> None:
    eid = FakeEid(ListShares=paged_shares(3), RevokeShare=revoked(SHARES.shares[0]))
    child = "acc_4a1f0c2e9b7d4e6f8a3c5b1d2e"
    with eid.serve() as target:
        assert run(target, "shares", "--session", "access-1", "--dependant", child) == 0
        assert f"eid revoke-share <Share ID> --dependant {child}" in capsys.readouterr().err
        argv = ["revoke-share", "shr_0", "--session", "access-1", "--dependant", child]
        assert run(target, *argv) == 0
    listed = [c.request for c in eid.calls if c.method == "ListShares"]
    assert listed and {r.dependant_account_id for r in listed} == {child}
    assert eid.only("RevokeShare").request.dependant_account_id == child
