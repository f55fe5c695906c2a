"""The verifier's commands of the ``eid`` CLI: keys, verify-qr and verify-offline,
against a fake server or none; exit codes, tables, JSON, reasons, and no personal
data in refusals."""

from __future__ import annotations

import datetime
import io
import json
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import timestamp_pb2
from PIL import Image

from eid.v1 import identity_service_pb2 as pb
from eid_client import qr
from eid_client.cli import main
from eid_client.keys_cache import cache_file_for
from eid_client.offline import KeySet
from tests.unit.client_cli_kit import fresh_terminal
from tests.unit.test_client_calls import FakeEid
from tests.unit.test_client_keys_cache import Signer, published

NAME = "Nguyễn Thị Lan"
UNTIL = timestamp_pb2.Timestamp(seconds=1_900_000_000)


@pytest.fixture(autouse=True)
def _clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    fresh_terminal(monkeypatch)


@pytest.fixture
def signer() -> Signer:
    return Signer("k2")


@pytest.fixture
def server(signer: Signer) -> Iterator[tuple[FakeEid, str]]:
    retired, revoked = Signer("k1"), Signer("k0")
    eid = FakeEid(
        GetVerificationKeys=published(
            signer.listed(),
            retired.listed(pb.VERIFICATION_KEY_STATE_RETIRED, not_after=UNTIL),
            revoked.listed(pb.VERIFICATION_KEY_STATE_REVOKED),
        )
    )
    with eid.serve() as target:
        yield eid, target


def image_of(payload: str, path: Path) -> Path:
    qr.write_image(payload, path)
    return path


def run(target: str, *argv: str) -> int:
    return main(["--target", target, *argv])


def test_keys_are_fetched_once_shown_and_cached(
    server: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]
) -> None:
    eid, target = server
    assert run(target, "keys") == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    header = next(line for line in lines if "Key ID" in line)
    for column in ("State", "Not before", "Not after", "Public key"):
        assert column in header
    rows = [line.split() for line in lines]
    states = {cells[0]: cells[1] for cells in rows if cells and cells[0] in ("k0", "k1", "k2")}
    assert states == {"k2": "CURRENT", "k1": "RETIRED", "k0": "REVOKED"}
    assert "2030-03-" in next(line for line in lines if line.startswith("  k1"))
    assert f"fetched from {target}, issuer eid.vn" in captured.out
    assert set(KeySet.from_json(cache_file_for(target).read_text())) == {"k0", "k1", "k2"}

    assert run(target, "--json", "keys") == 0  # from the cache now
    document = json.loads(capsys.readouterr().out)
    assert {k["key_id"]: k["state"] for k in document["keys"]} == states
    assert len(eid.calls) == 1
    assert run(target, "keys", "--refresh") == 0
    assert len(eid.calls) == 2


def test_keys_out_writes_the_cache_format_or_jwks(
    server: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, target = server
    ours, jwks = tmp_path / "keys.json", tmp_path / "jwks.json"
    assert run(target, "keys", "--out", str(ours)) == 0
    # The hint may wrap at the terminal width (a long temporary path does).
    assert f"eid verify-qr IMAGE --keys {ours}" in " ".join(capsys.readouterr().err.split())
    assert KeySet.from_json(ours.read_text())["k0"].revoked
    assert run(target, "keys", "--out", str(jwks), "--jwks") == 0
    assert "cannot mark keys retired or revoked" in capsys.readouterr().err
    assert {k["kid"] for k in json.loads(jwks.read_text())["keys"]} == {"k1", "k2"}
    assert run(target, "keys", "--jwks") == 0
    assert {k["kid"] for k in json.loads(capsys.readouterr().out)["keys"]} == {"k1", "k2"}


def test_the_suggested_verify_qr_command_quotes_a_keys_file_with_a_space(
    server: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, target = server
    keys = tmp_path / "desk keys" / "keys.json"
    keys.parent.mkdir()
    assert run(target, "keys", "--out", str(keys)) == 0
    hint = " ".join(capsys.readouterr().err.split())
    assert f"eid verify-qr IMAGE --keys '{keys}'" in hint  # pasted, one argument


def test_verify_qr_with_a_keys_file_needs_no_server(
    server: tuple[FakeEid, str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    signer: Signer,
) -> None:
    eid, target = server
    keys = tmp_path / "keys.json"
    assert run(target, "keys", "--out", str(keys)) == 0
    eid.calls.clear()
    capsys.readouterr()
    image = image_of(signer.issue(), tmp_path / "share.png")
    nowhere = "127.0.0.1:1"  # nothing listens there
    assert run(nowhere, "verify-qr", str(image), "--keys", str(keys)) == 0
    out = capsys.readouterr().out
    for expected in ("yes, offline", "eid.vn", "k2", "001190791514", NAME, "1990-05-17", "female"):
        assert expected in out
    assert run(nowhere, "--json", "verify-qr", str(image), "--keys", str(keys)) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["verified"] is True and data["audience"] is None
    assert data["attributes"] == {
        "personal_id": "001190791514",
        "full_name": NAME,
        "birth_date": "1990-05-17",
        "gender": "female",
    }
    assert eid.calls == []


def test_verify_qr_fetches_the_keys_once_then_uses_the_cache(
    server: tuple[FakeEid, str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    signer: Signer,
) -> None:
    eid, target = server
    image = image_of(signer.issue(), tmp_path / "share.png")
    assert run(target, "verify-qr", str(image)) == 0
    assert f"(cache: {cache_file_for(target)})" in capsys.readouterr().err
    assert run(target, "verify-qr", str(image)) == 0
    assert "Fetched" not in capsys.readouterr().err
    assert len(eid.calls) == 1
    assert run(target, "verify-qr", str(image), "--refresh-keys") == 0
    assert len(eid.calls) == 2


def test_an_online_share_must_be_redeemed_online(
    server: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    eid, target = server
    image = image_of("eid1.eyJraWQiOiJrMiJ9.eyJzaWQiOiJzaHJfMSJ9.c2ln", tmp_path / "online.png")
    assert run(target, "verify-qr", str(image)) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: SHARE_ONLINE_ONLY")
    assert "eid --api-key $EID_API_KEY redeem 'eid1." in captured.err
    assert eid.calls == []  # the keys are not needed to tell


@pytest.mark.parametrize(
    "payload",
    [
        "eid1.x'; touch pwned; echo '",  # would run `touch pwned` if pasted into a shell
        "eid2.\x1b]0;title\x07\x1b[2Kredeem ok",  # terminal control sequences
    ],
)
def test_an_online_share_that_is_no_token_is_not_echoed(
    capsys: pytest.CaptureFixture[str], payload: str
) -> None:
    # The advice's command is meant to be copied into a shell: only a token's
    # own characters may appear in it, never what a forged QR code says.
    assert run("127.0.0.1:1", "verify-offline", payload) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: SHARE_ONLINE_ONLY")
    assert "redeem" in err
    assert payload[5:] not in err and "\x1b" not in err


@pytest.mark.parametrize(
    ("argv", "reason", "advice"),
    [
        ([], "SHARE_AUDIENCE_MISMATCH", "pass its id with --audience"),
        (["--audience", "rp_other"], "SHARE_AUDIENCE_MISMATCH", "bound to another relying party"),
    ],
)
def test_a_share_bound_to_a_party(
    server: tuple[FakeEid, str],
    capsys: pytest.CaptureFixture[str],
    signer: Signer,
    argv: list[str],
    reason: str,
    advice: str,
) -> None:
    _, target = server
    payload = signer.issue(audience="rp_bank")
    assert run(target, "verify-offline", payload, *argv) == 1
    err = capsys.readouterr().err
    assert f"error: {reason}: " in err and advice in err
    assert run(target, "verify-offline", payload, "--audience", "rp_bank") == 0


def test_refusals_give_the_reason_and_no_personal_data(
    server: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str], signer: Signer
) -> None:
    _, target = server
    expired = signer.issue(age=datetime.timedelta(minutes=10))
    forged = Signer("k2").issue()  # the published kid, another private key
    revoked = Signer("k0").issue()
    for payload, reason in (
        (expired, "SHARE_EXPIRED"),
        (forged, "SHARE_SIGNATURE_INVALID"),
        (revoked, "SHARE_KEY_REVOKED"),
        (expired[:-9], "SHARE_PAYLOAD_MALFORMED"),
    ):
        assert run(target, "verify-offline", payload) == 1, reason
        captured = capsys.readouterr()
        assert captured.out == ""
        assert f"error: {reason}: " in captured.err
        for personal in ("001190791514", NAME, "1990", "female"):
            assert personal not in captured.err


def test_an_unknown_key_in_a_keys_file_says_to_fetch_again(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(KeySet([]).to_json())
    assert run("127.0.0.1:1", "verify-offline", Signer("k7").issue(), "--keys", str(keys)) == 1
    err = capsys.readouterr().err
    assert "SHARE_KEY_UNKNOWN" in err and "eid keys --refresh --out FILE" in err


def test_verify_offline_reads_the_payload_from_stdin(
    server: tuple[FakeEid, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    signer: Signer,
) -> None:
    _, target = server
    monkeypatch.setattr("sys.stdin", io.StringIO(signer.issue() + "\r\n"))
    assert run(target, "--json", "verify-offline", "-") == 0
    assert json.loads(capsys.readouterr().out)["key_id"] == "k2"
    assert run(target, "verify-offline", "-") == 2  # stdin is empty now
    assert "no payload" in capsys.readouterr().err


def test_images_without_exactly_one_qr_code(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, signer: Signer
) -> None:
    blank, text, two = tmp_path / "blank.png", tmp_path / "notes.png", tmp_path / "two.png"
    Image.new("L", (200, 200), 255).save(blank)
    text.write_text("not an image")
    left = image_of(signer.issue(), tmp_path / "a.png")
    right = image_of("eid1.other", tmp_path / "b.png")
    with Image.open(left) as a, Image.open(right) as b:
        both = Image.new("L", (a.width + b.width + 40, max(a.height, b.height)), 255)
        both.paste(a, (0, 0))
        both.paste(b, (a.width + 40, 0))
        both.save(two)
    keys = ["--keys", str(tmp_path / "unused.json")]
    assert run("127.0.0.1:1", "verify-qr", str(blank), *keys) == 1
    assert "no QR code found" in capsys.readouterr().err
    assert run("127.0.0.1:1", "verify-qr", str(text), *keys) == 1
    assert "not an image" in capsys.readouterr().err
    assert run("127.0.0.1:1", "verify-qr", str(two), *keys) == 1
    assert "2 QR codes found" in capsys.readouterr().err
    assert run("127.0.0.1:1", "verify-qr", str(tmp_path / "missing.png"), *keys) == 2
    assert "no such file" in capsys.readouterr().err


def _png_with_chunk(path: Path, kind: bytes, data: bytes) -> Path:
    """A genuine QR PNG with one more chunk after its header."""
    qr.write_image("eid1.x", path)
    png = path.read_bytes()
    chunk = len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
    path.write_bytes(png[:33] + chunk + png[33:])  # 33: signature and IHDR
    return path


@pytest.mark.parametrize(
    "content",
    [
        b"P5\n2a5 325\n255\n" + bytes(100),  # a PGM header Pillow cannot parse
        b"P6\n" + b"\xff" * 100,
    ],
)
def test_damaged_images_pillow_refuses_with_value_error_are_qr_image_errors(
    tmp_path: Path, content: bytes
) -> None:
    image = tmp_path / "scan.pgm"
    image.write_bytes(content)
    with pytest.raises(qr.QrImageError):
        qr.read_payloads(image)


def test_a_png_with_a_text_chunk_bomb_is_a_qr_image_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bomb = b"k\x00\x00" + zlib.compress(bytes(20_000_000))  # 20 MB of text, inflated
    image = _png_with_chunk(tmp_path / "bomb.png", b"zTXt", bomb)
    with pytest.raises(qr.QrImageError):
        qr.read_payloads(image)
    assert run("127.0.0.1:1", "verify-qr", str(image), "--keys", str(tmp_path / "k.json")) == 1
    assert "cannot read the image" in capsys.readouterr().err


@pytest.mark.parametrize("kind", [*qr.READ_FORMATS, "MPO"])
def test_photos_and_screenshots_in_every_read_format_are_read(tmp_path: Path, kind: str) -> None:
    png = image_of("eid1.abc", tmp_path / "share.png")
    photo = tmp_path / f"share.{kind.lower()}"
    with Image.open(png) as drawn:
        drawn.convert("RGB").save(photo, kind)
    assert qr.read_payloads(photo) == ["eid1.abc"]


def test_postscript_is_refused_without_running_ghostscript(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pillow renders EPS by running Ghostscript on the file: not for a scanned image.
    from PIL import EpsImagePlugin

    ran: list[object] = []
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **k: ran.append(a))
    image = tmp_path / "scan.eps"
    Image.new("L", (50, 50), 255).save(image, "EPS")
    with pytest.raises(qr.QrImageError, match="not an image"):
        qr.read_payloads(image)
    assert ran == []


def test_an_image_of_too_many_pixels_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = tmp_path / "big.png"
    Image.new("L", (200, 200), 255).save(big)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # Pillow refuses over twice this
    assert run("127.0.0.1:1", "verify-qr", str(big), "--keys", str(tmp_path / "k.json")) == 1
    assert "too many pixels" in capsys.readouterr().err


def test_an_unwritable_cache_does_not_stop_verification(
    server: tuple[FakeEid, str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    signer: Signer,
) -> None:
    eid, target = server
    blocker = tmp_path / "not a folder"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # the cache folder cannot be made
    assert run(target, "verify-offline", signer.issue()) == 0
    assert NAME in capsys.readouterr().out
    assert run(target, "keys") == 0
    assert "warning: cannot write the cache" in capsys.readouterr().err
    assert len(eid.calls) == 2


def test_a_bad_keys_file_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, signer: Signer
) -> None:
    bad = tmp_path / "keys.json"
    bad.write_text("[]")
    argv = ["verify-offline", signer.issue(), "--keys"]
    assert run("127.0.0.1:1", *argv, str(bad)) == 2
    assert "not an eid keys file nor a JWKS document" in capsys.readouterr().err
    assert run("127.0.0.1:1", *argv, str(tmp_path / "none.json")) == 2
    assert "no such file" in capsys.readouterr().err


def test_no_keys_and_no_server_hints_at_a_keys_file(
    capsys: pytest.CaptureFixture[str], signer: Signer
) -> None:
    assert run("127.0.0.1:1", "--timeout", "2", "verify-offline", signer.issue()) == 1
    err = capsys.readouterr().err
    assert "UNAVAILABLE" in err and "pass --keys FILE" in err


def test_help_lists_the_verifier_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("verify-qr", "verify-offline", "keys", "eid keys --out keys.json"):
        assert command in out
    assert main(["verify-qr", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--keys", "--audience", "--refresh-keys", "zxing-cpp"):
        assert option in out
