"""TLS settings: which combinations are refused and how the message names the
setting, what is wrong with each kind of bad file, when plaintext is allowed,
and the certificate fingerprint parties are bound by."""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from eid_service.cli_party_args import client_cert_file, client_cert_sha256
from eid_service.config import Settings
from eid_service.security.tls import (
    TlsSettingError,
    TlsSettings,
    certificate_sha256,
    load_tls,
    tls_from_env,
)
from eid_service.settings_values import SettingError
from eid_service.transport import check_transport, is_local
from tests.unit.tls_kit import Pki, make_pki

MakePath = Callable[[Pki, Path], Path]
CERT, KEY = "EID_TLS_CERT_FILE", "EID_TLS_KEY_FILE"
CA, MTLS = "EID_TLS_CLIENT_CA_FILE", "EID_MTLS_LISTEN"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_no_tls_setting_is_plaintext() -> None:
    assert tls_from_env({}) is None
    assert Settings.from_env({}).tls is None


def test_all_four_settings_give_tls_and_mutual_tls() -> None:
    env = {CERT: "s.crt", KEY: "s.key", CA: "ca.crt", MTLS: "0.0.0.0:50052"}
    assert Settings.from_env(env).tls == TlsSettings(
        Path("s.crt"), Path("s.key"), Path("ca.crt"), "0.0.0.0:50052"
    )


@pytest.mark.parametrize(
    ("env", "named", "needs"),
    [
        ({CERT: "s.crt"}, CERT, KEY),
        ({KEY: "s.key"}, KEY, CERT),
        ({CA: "ca.crt"}, CA, CERT),
        ({MTLS: "0.0.0.0:50052"}, MTLS, CERT),
        ({CERT: "s.crt", KEY: "s.key", CA: "ca.crt"}, CA, MTLS),
        ({CERT: "s.crt", KEY: "s.key", MTLS: "0.0.0.0:50052"}, MTLS, CA),
    ],
)
def test_a_setting_without_its_partner_is_refused(
    env: dict[str, str], named: str, needs: str
) -> None:
    with pytest.raises(SettingError) as caught:
        Settings.from_env(env)
    assert caught.value.name == named
    assert needs in str(caught.value)


def test_a_malformed_mtls_address_is_refused() -> None:
    with pytest.raises(SettingError) as caught:
        tls_from_env({CERT: "s.crt", KEY: "s.key", CA: "ca.crt", MTLS: "nowhere"})
    assert caught.value.name == MTLS


def _files(pki: Pki, **changes: Path) -> TlsSettings:
    base = {"cert_file": pki.server.cert, "key_file": pki.server.key, "client_ca_file": pki.ca}
    return TlsSettings(**{**base, **changes}, mtls_listen="127.0.0.1:0")


def test_good_files_load(pki: Pki) -> None:
    material = load_tls(_files(pki))
    assert material.certificate_chain == pki.server.cert.read_bytes()
    assert material.private_key == pki.server.key.read_bytes()
    assert material.client_ca == pki.ca_pem()


def _encrypted_key(pki: Pki, folder: Path) -> Path:
    key = serialization.load_pem_private_key(pki.server.key.read_bytes(), None)
    path = folder / "encrypted.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    return path


def _other_key(folder: Path) -> Path:
    path = folder / "other.key"
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


@pytest.mark.parametrize(
    ("field", "make", "setting", "problem"),
    [
        ("cert_file", lambda p, d: d / "missing.crt", CERT, "no file at"),
        ("cert_file", lambda p, d: d, CERT, "cannot read"),  # a folder
        ("cert_file", lambda p, d: p.server.key, CERT, "holds no PEM certificate"),
        ("key_file", lambda p, d: d / "missing.key", KEY, "no file at"),
        ("key_file", lambda p, d: p.server.cert, KEY, "holds no PEM private key"),
        ("key_file", lambda p, d: p.client.key, KEY, "does not belong to the first certificate"),
        ("key_file", lambda p, d: _other_key(d), KEY, "does not belong to the first certificate"),
        ("key_file", _encrypted_key, KEY, "is encrypted"),
        ("client_ca_file", lambda p, d: d / "missing-ca.crt", CA, "no file at"),
        ("client_ca_file", lambda p, d: p.client.key, CA, "holds no PEM certificate"),
    ],
)
def test_a_bad_file_is_named_with_its_setting(
    pki: Pki, tmp_path: Path, field: str, make: MakePath, setting: str, problem: str
) -> None:
    path = make(pki, tmp_path)
    with pytest.raises(TlsSettingError) as caught:
        load_tls(_files(pki, **{field: path}))
    message = str(caught.value)
    assert message.startswith(f"{setting}: ")
    assert problem in message
    assert str(path) in message


def test_an_expired_certificate_is_refused(pki: Pki) -> None:
    later = datetime.now(UTC) + timedelta(days=2)  # the kit's certificates last a day
    with pytest.raises(TlsSettingError, match=f"^{CERT}: .* expired on"):
        load_tls(_files(pki), now=later)


@pytest.mark.parametrize(
    ("listen", "local"),
    [
        ("127.0.0.1:50051", True),
        ("127.8.9.1:1", True),
        ("[::1]:50051", True),
        ("localhost:50051", True),
        ("unix:/run/eid.sock", True),
        ("0.0.0.0:50051", False),
        ("[::]:50051", False),
        (":50051", False),
        ("10.0.0.5:50051", False),
        ("eid.example.vn:443", False),
    ],
)
def test_which_addresses_are_local(listen: str, local: bool) -> None:
    assert is_local(listen) is local


def test_plaintext_off_loopback_needs_allow_insecure(caplog: pytest.LogCaptureFixture) -> None:
    exposed = Settings(listen="0.0.0.0:50051")
    refusal = check_transport(exposed)
    assert refusal is not None
    assert "EID_LISTEN 0.0.0.0:50051" in refusal
    assert "EID_ALLOW_INSECURE=true" in refusal
    with caplog.at_level(logging.WARNING, logger="eid.server"):
        assert check_transport(Settings(listen="0.0.0.0:50051", allow_insecure=True)) is None
    assert any(
        r.levelno == logging.WARNING and "EID_ALLOW_INSECURE" in r.getMessage()
        for r in caplog.records
    )


def test_loopback_plaintext_and_good_tls_start_quietly(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="eid.server"):
        assert check_transport(Settings()) is None
        exposed = Settings(listen="0.0.0.0:443", workers=1, tls=_files(pki))
        assert check_transport(exposed) is None
    assert caplog.records == []


def test_tls_problems_stop_the_start(pki: Pki, tmp_path: Path) -> None:
    missing = check_transport(Settings(tls=_files(pki, key_file=tmp_path / "gone.key")))
    assert missing is not None and missing.startswith(f"{KEY}: no file at")
    several = Settings(workers=2, tls=_files(pki))
    assert check_transport(several) == f"{MTLS}: several workers need a fixed port, not :0"


def test_the_fingerprint_is_the_one_openssl_prints(pki: Pki) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: nothing to compare the fingerprint with")
    printed = subprocess.run(
        ["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", str(pki.client.cert)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    expected = certificate_sha256(pki.client.cert.read_bytes())
    assert client_cert_sha256(printed) == expected  # "sha256 Fingerprint=AB:CD:..."
    assert client_cert_sha256(expected.hex()) == expected
    assert client_cert_file(str(pki.client.cert)) == expected
    assert expected != certificate_sha256(pki.colleague.cert.read_bytes())


@pytest.mark.parametrize("text", ["", "abc", "zz" * 32, "ab" * 31, "ab" * 33])
def test_a_malformed_fingerprint_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="64 hex digits"):
        client_cert_sha256(text)
