"""TLS and mutual TLS: both clients and the `eid` CLI against a real gRPC server
serving with grpc.ssl_server_credentials, under a CA this test makes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from eid_client import AsyncEidClient, EidClient, EidError, RetryPolicy, Tls
from eid_client.cli import main
from tests.unit.test_client_calls import VERIFIED, FakeEid
from tests.unit.tls_kit import Pki, make_pki

ONCE = RetryPolicy.off()  # a refused handshake is refused again: keep the tests quick


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def server_tls(pki: Pki, *, client_certificates: bool) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials(
        [(pki.server.key.read_bytes(), pki.server.cert.read_bytes())],
        root_certificates=pki.ca_pem() if client_certificates else None,
        require_client_auth=client_certificates,
    )


@pytest.fixture(scope="module")
def tls_server(pki: Pki) -> Iterator[tuple[str, FakeEid]]:
    fake = FakeEid(Verify=VERIFIED)
    with fake.serve(server_tls(pki, client_certificates=False)) as target:
        yield target, fake


@pytest.fixture(scope="module")
def mtls_server(pki: Pki) -> Iterator[str]:
    fake = FakeEid(Verify=VERIFIED)
    with fake.serve(server_tls(pki, client_certificates=True)) as target:
        yield target


def test_a_private_ca_is_trusted_when_given(tls_server: tuple[str, FakeEid], pki: Pki) -> None:
    target, fake = tls_server
    with EidClient(target, api_key="rp-key", tls=Tls(root_certificates=pki.ca)) as client:
        assert client.verify_password(personal_id="001090001234", password="pw").verified
    assert fake.calls[-1].metadata["x-api-key"] == "rp-key"


async def test_the_async_client_speaks_tls(tls_server: tuple[str, FakeEid], pki: Pki) -> None:
    target, _ = tls_server
    async with AsyncEidClient(target, tls=Tls(root_certificates=pki.ca_pem())) as client:
        assert await client.health() == "SERVING"


@pytest.mark.parametrize(
    "tls",
    [False, True],  # plaintext to a TLS port; the system's roots, which lack our CA
)
def test_a_server_the_client_cannot_trust_is_unavailable(
    tls_server: tuple[str, FakeEid], tls: bool
) -> None:
    target, _ = tls_server
    with (
        EidClient(target, tls=tls, retry=ONCE, timeout=5) as client,
        pytest.raises(EidError) as caught,
    ):
        client.health()
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE


def test_mtls_serves_a_client_with_its_certificate(mtls_server: str, pki: Pki) -> None:
    tls = Tls(
        root_certificates=pki.ca, client_certificate=pki.client.cert, client_key=pki.client.key
    )
    with EidClient(mtls_server, api_key="k", tls=tls) as client:
        assert client.verify_password(personal_id="001090001234", password="pw").verified


@pytest.mark.parametrize("who", ["nobody", "stranger"])
def test_mtls_refuses_a_client_without_a_trusted_certificate(
    mtls_server: str, pki: Pki, who: str
) -> None:
    tls = (
        Tls(root_certificates=pki.ca)
        if who == "nobody"
        else Tls(
            root_certificates=pki.ca,
            client_certificate=pki.stranger.cert,
            client_key=pki.stranger.key,
        )
    )
    with (
        EidClient(mtls_server, api_key="k", tls=tls, retry=ONCE, timeout=5) as client,
        pytest.raises(EidError) as caught,
    ):
        client.verify_password(personal_id="001090001234", password="pw")
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE


def test_the_cli_takes_certificates_from_flags_and_environment(
    mtls_server: str, pki: Pki, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ["--ca-cert", str(pki.ca), "--client-cert", str(pki.client.cert)]
    flags += ["--client-key", str(pki.client.key)]
    assert main(["--target", mtls_server, *flags, "health"]) == 0
    assert "SERVING" in capsys.readouterr().out
    monkeypatch.setenv("EID_CA_CERT", str(pki.ca))
    monkeypatch.setenv("EID_CLIENT_CERT", str(pki.client.cert))
    monkeypatch.setenv("EID_CLIENT_KEY", str(pki.client.key))
    assert main(["--target", mtls_server, "health"]) == 0
    monkeypatch.delenv("EID_CLIENT_CERT")
    monkeypatch.delenv("EID_CLIENT_KEY")
    assert main(["--target", mtls_server, "--timeout", "3", "health"]) == 1  # no certificate
    assert "UNAVAILABLE" in capsys.readouterr().err


def test_a_certificate_needs_its_key_and_files_must_be_readable(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="private key"):
        Tls(client_certificate=b"-----BEGIN CERTIFICATE-----")
    with pytest.raises(ValueError, match="root certificates file"):
        EidClient("127.0.0.1:1", tls=Tls(root_certificates=tmp_path / "missing.pem"))
    with pytest.raises(ValueError, match="not both"):
        EidClient("127.0.0.1:1", tls=True, credentials=grpc.ssl_channel_credentials())
