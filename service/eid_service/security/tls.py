"""TLS settings and material: the server's certificate chain and private key,
and the CA that issues relying parties' client certificates, read and checked
at start so that a bad file is named before any port opens; and the
fingerprint by which a party is bound to its client certificate.

grpcio can only require client certificates on a port or not ask for them
at all (it has no "ask, verify if given"), so mutual TLS gets a port of its
own, EID_MTLS_LISTEN: the main port stays usable by citizens' apps and by
parties without a certificate."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from eid_service import settings_values as values

CERT_FILE = "EID_TLS_CERT_FILE"
KEY_FILE = "EID_TLS_KEY_FILE"
CLIENT_CA_FILE = "EID_TLS_CLIENT_CA_FILE"
MTLS_LISTEN = "EID_MTLS_LISTEN"


@dataclass(frozen=True)
class TlsSettings:
    cert_file: Path  # PEM: the server's certificate first, then intermediates
    key_file: Path  # PEM: its private key, unencrypted
    # PEM: the CA(s) of parties' client certificates; with mtls_listen, a
    # second port that requires a client certificate from them.
    client_ca_file: Path | None = None
    mtls_listen: str | None = None


@dataclass(frozen=True)
class TlsMaterial:
    certificate_chain: bytes
    private_key: bytes
    client_ca: bytes | None


class TlsSettingError(ValueError):
    """A TLS file that cannot be served with; the message names its setting."""


def tls_from_env(env: Mapping[str, str]) -> TlsSettings | None:
    """None (plaintext) when no TLS setting is given; SettingError names a
    setting that needs another. The files are read at start (load_tls)."""
    cert, key = env.get(CERT_FILE, "").strip(), env.get(KEY_FILE, "").strip()
    ca = env.get(CLIENT_CA_FILE, "").strip()
    mtls = values.listen_address(env, MTLS_LISTEN, "") if env.get(MTLS_LISTEN, "").strip() else ""
    if not (cert or key):
        if ca or mtls:
            given = CLIENT_CA_FILE if ca else MTLS_LISTEN
            raise values.SettingError(given, f"needs TLS: set {CERT_FILE} and {KEY_FILE} too")
        return None
    if not (cert and key):
        missing, given = (KEY_FILE, CERT_FILE) if cert else (CERT_FILE, KEY_FILE)
        raise values.SettingError(given, f"is set but {missing} is not: TLS needs both")
    if bool(ca) != bool(mtls):
        missing, given = (MTLS_LISTEN, CLIENT_CA_FILE) if ca else (CLIENT_CA_FILE, MTLS_LISTEN)
        raise values.SettingError(given, f"is set but {missing} is not: mutual TLS needs both")
    return TlsSettings(Path(cert), Path(key), Path(ca) if ca else None, mtls or None)


def _read(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise TlsSettingError(f"{setting}: no file at {path}") from None
    except OSError as error:
        raise TlsSettingError(f"{setting}: cannot read {path} ({error.strerror})") from None


def _certificates(pem: bytes, path: Path, setting: str) -> list[x509.Certificate]:
    try:
        found = x509.load_pem_x509_certificates(pem)
    except ValueError:
        found = []
    if not found:
        raise TlsSettingError(f"{setting}: {path} holds no PEM certificate")
    return found


def load_tls(settings: TlsSettings, now: datetime | None = None) -> TlsMaterial:
    """The files' contents, checked: certificates that parse, an unencrypted
    key that belongs to the first certificate, which has not expired."""
    chain = _read(settings.cert_file, CERT_FILE)
    key_pem = _read(settings.key_file, KEY_FILE)
    leaf = _certificates(chain, settings.cert_file, CERT_FILE)[0]
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise TlsSettingError(
            f"{KEY_FILE}: the key in {settings.key_file} is encrypted; give it unencrypted"
        ) from None
    except ValueError:
        raise TlsSettingError(f"{KEY_FILE}: {settings.key_file} holds no PEM private key") from None
    if key.public_key() != leaf.public_key():
        raise TlsSettingError(
            f"{KEY_FILE}: the key in {settings.key_file} does not belong to the first"
            f" certificate in {CERT_FILE} ({settings.cert_file})"
        )
    expires = leaf.not_valid_after_utc
    if expires <= (now or datetime.now(UTC)):
        raise TlsSettingError(
            f"{CERT_FILE}: the certificate in {settings.cert_file} expired on"
            f" {expires.isoformat(timespec='seconds')}"
        )
    client_ca = None
    if settings.client_ca_file is not None:
        client_ca = _read(settings.client_ca_file, CLIENT_CA_FILE)
        _certificates(client_ca, settings.client_ca_file, CLIENT_CA_FILE)
    return TlsMaterial(chain, key_pem, client_ca)


def certificate_sha256(pem: bytes) -> bytes:
    """The SHA-256 of a PEM certificate's DER encoding: what
    `openssl x509 -noout -fingerprint -sha256` prints, and what binds a party."""
    return hashlib.sha256(
        x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    ).digest()
