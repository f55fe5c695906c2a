"""TLS as an operator runs it: `eid-server serve` refuses plaintext on an
address other machines reach unless EID_ALLOW_INSECURE=true (then warns), and
a TLS file it cannot use, naming the setting; two workers serve TLS and
mutual TLS, and the `eid` CLI of the README reaches them as a party bound to
its client certificate."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from eid_client import EidClient, RetryPolicy, Tls
from tests.e2e.conftest import BIN, free_port
from tests.e2e.served import Served, serving_env, workdir_from
from tests.unit.tls_kit import Pki, make_pki

pytestmark = pytest.mark.e2e


def _serve(workdir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "eid-server"), "serve", "--workers", "1"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def _tls_env(pki: Pki, **more: str) -> dict[str, str]:
    files = {"EID_TLS_CERT_FILE": str(pki.server.cert), "EID_TLS_KEY_FILE": str(pki.server.key)}
    return serving_env(**{**files, **more})


def test_plaintext_off_loopback_needs_allow_insecure(tmp_path: Path, prepared: Path) -> None:
    workdir = workdir_from(prepared, tmp_path)
    port = free_port()
    exposed = serving_env(EID_LISTEN=f"0.0.0.0:{port}")
    refused = _serve(workdir, exposed)
    assert refused.returncode == 2
    assert f"EID_LISTEN 0.0.0.0:{port} is reachable from other machines and TLS is off" in (
        refused.stderr
    )

    allowed = Served(workdir, {**exposed, "EID_ALLOW_INSECURE": "true"}, workers=1)
    try:
        allowed.wait_for(r"WARNING .*plaintext on 0\.0\.0\.0:\d+ \(EID_ALLOW_INSECURE=true\)")
        allowed.serving_pids(1)
        with EidClient(f"127.0.0.1:{port}", timeout=5) as client:
            assert client.health() == "SERVING"
    finally:
        allowed.close()
    assert allowed.process.returncode == 0


def test_a_tls_file_it_cannot_use_stops_the_start(tmp_path: Path, prepared: Path) -> None:
    pki = make_pki(tmp_path)
    workdir = workdir_from(prepared, tmp_path / "work")
    wrong_key = _tls_env(pki, EID_TLS_KEY_FILE=str(pki.client.key))
    done = _serve(workdir, wrong_key)
    assert done.returncode == 2
    assert (
        f"not serving: EID_TLS_KEY_FILE: the key in {pki.client.key} does not belong to the"
        f" first certificate in EID_TLS_CERT_FILE ({pki.server.cert})"
    ) in done.stderr


def _eid(pki: Pki, target: str, *args: str, cert: bool) -> subprocess.CompletedProcess[str]:
    mutual = ["--client-cert", str(pki.client.cert), "--client-key", str(pki.client.key)]
    return subprocess.run(
        [str(BIN / "eid"), "--target", target, "--ca-cert", str(pki.ca)]
        + (mutual if cert else [])
        + list(args),
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


def test_two_workers_serve_tls_and_a_bound_party_over_mutual_tls(
    tmp_path: Path, prepared: Path
) -> None:
    pki = make_pki(tmp_path)
    workdir = workdir_from(prepared, tmp_path / "work")
    mtls = f"127.0.0.1:{free_port()}"
    env = _tls_env(pki, EID_TLS_CLIENT_CA_FILE=str(pki.ca), EID_MTLS_LISTEN=mtls)
    bind = ["--client-cert", str(pki.client.cert)]
    created = subprocess.run(
        [str(BIN / "eid-server"), "party", "create", "--name", "Bank", *bind],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    bank_key = created.stdout.strip().splitlines()[-1]
    served = Served(workdir, env, workers=2)
    try:
        served.wait_for(r"mutual TLS on 127\.0\.0\.1:\d+: client certificates issued by")
        served.serving_pids(2)
        bound = _eid(pki, mtls, "--api-key", bank_key, "webhook", cert=True)
        assert bound.returncode == 0, bound.stderr
        assert "none: set one with --url" in bound.stdout
        without = _eid(pki, served.target, "--api-key", bank_key, "webhook", cert=False)
        assert without.returncode != 0
        assert "CLIENT_CERTIFICATE_REQUIRED" in without.stdout + without.stderr
        # New connections, spread over both workers, all speak TLS.
        citizen = Tls(root_certificates=pki.ca)
        for _ in range(4):
            with EidClient(served.target, tls=citizen, retry=RetryPolicy.off()) as client:
                assert client.health() == "SERVING"
    finally:
        served.close()
    assert served.process.returncode == 0
