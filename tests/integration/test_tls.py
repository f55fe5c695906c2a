"""TLS and mutual TLS on a real server (files from a CA this test makes),
reached with the SDK: plaintext is refused at the TLS layer; a party bound
to a client certificate is served only over mutual TLS with that very
certificate; unbound parties and citizens need none."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import grpc
import pytest

from eid_client import EidClient, EidError, RetryPolicy, Tls
from eid_service.security.tls import TlsSettings, certificate_sha256
from eid_service.use_cases.parties import bind_client_certificate
from eid_service.use_cases.party_cache import TTL_SECONDS
from tests.integration.harness import ServerHarness
from tests.unit.tls_kit import Issued, Pki, make_pki

# TLS does not depend on the database kind; the binding's storage is tested
# on both in test_party_store.py.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
ONCE = RetryPolicy.off()  # a refused handshake is refused again


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@dataclass
class Served:
    harness: ServerHarness
    pki: Pki
    bound_id: str
    bound_key: str  # bound to pki.client
    unbound_key: str

    @property
    def tls_target(self) -> str:
        return self.harness.target

    @property
    def mtls_target(self) -> str:
        return f"127.0.0.1:{self.harness.mtls_port}"

    def client(
        self, api_key: str, *, mutual: bool = False, cert: Issued | None = None
    ) -> EidClient:
        tls = Tls(
            root_certificates=self.pki.ca,
            client_certificate=None if cert is None else cert.cert,
            client_key=None if cert is None else cert.key,
        )
        target = self.mtls_target if mutual else self.tls_target
        return EidClient(target, api_key=api_key, tls=tls, retry=ONCE, timeout=5)


@pytest.fixture
def served(database_url: str, pki: Pki) -> Iterator[Served]:
    settings = TlsSettings(
        cert_file=pki.server.cert,
        key_file=pki.server.key,
        client_ca_file=pki.ca,
        mtls_listen="127.0.0.1:0",
    )
    harness = ServerHarness(database_url, tls=settings).start()
    try:
        bound, bound_key = harness.create_party("Bound Bank")
        _, unbound_key = harness.create_party("Plain Clinic")
        fingerprint = certificate_sha256(pki.client.cert.read_bytes())
        harness.run(bind_client_certificate(harness.runtime.uow, bound.id, fingerprint))
        yield Served(harness, pki, bound.id, bound_key, unbound_key)
    finally:
        harness.stop()


def _refused(client: EidClient) -> EidError:
    with client, pytest.raises(EidError) as caught:
        client.status_webhook()
    return caught.value


def test_the_sdk_reaches_both_ports_and_plaintext_is_refused(served: Served) -> None:
    with EidClient(served.tls_target, tls=Tls(root_certificates=served.pki.ca)) as citizen:
        assert citizen.health() == "SERVING"
    with served.client(served.unbound_key) as party:
        assert party.status_webhook() is None
    with served.client(served.unbound_key, mutual=True, cert=served.pki.colleague) as party:
        assert party.status_webhook() is None
    for target in (served.tls_target, served.mtls_target):
        plain = EidClient(target, api_key=served.unbound_key, retry=ONCE, timeout=5)
        assert _refused(plain).code == grpc.StatusCode.UNAVAILABLE


def test_a_bound_party_is_served_only_with_its_certificate(served: Served) -> None:
    with served.client(served.bound_key, mutual=True, cert=served.pki.client) as party:
        assert party.status_webhook() is None

    without = _refused(served.client(served.bound_key))
    assert (without.code, without.reason) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "CLIENT_CERTIFICATE_REQUIRED",
    )
    other = _refused(served.client(served.bound_key, mutual=True, cert=served.pki.colleague))
    assert (other.code, other.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "CLIENT_CERTIFICATE_MISMATCH",
    )
    # The mutual-TLS port takes no caller without a certificate of the CA.
    for cert in (None, served.pki.stranger):
        refused = _refused(served.client(served.bound_key, mutual=True, cert=cert))
        assert refused.code == grpc.StatusCode.UNAVAILABLE
        assert refused.reason is None


def test_unbinding_takes_effect_once_the_cached_party_lapses(served: Served) -> None:
    before = _refused(served.client(served.bound_key))
    assert before.reason == "CLIENT_CERTIFICATE_REQUIRED"
    harness = served.harness
    harness.run(bind_client_certificate(harness.runtime.uow, served.bound_id, None))
    harness.clock.advance(timedelta(seconds=TTL_SECONDS + 1))
    with served.client(served.bound_key) as party:
        assert party.status_webhook() is None
