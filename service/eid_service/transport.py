"""How the server's ports are opened: TLS from the settings' files, mutual
TLS on a port of its own (EID_MTLS_LISTEN, see security/tls.py), and
plaintext only on loopback unless EID_ALLOW_INSECURE says otherwise."""

from __future__ import annotations

import ipaddress
import logging

import grpc
from grpc import aio

from eid_service.config import Settings
from eid_service.security.tls import TlsSettingError, load_tls
from eid_service.settings_values import split_listen

log = logging.getLogger("eid.server")


def is_local(listen: str) -> bool:
    """Whether only this machine can reach `listen`: a loopback address,
    localhost, or a Unix socket."""
    address = split_listen(listen)
    if address is None:
        return True
    host = address[0].lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "" (every interface) or a host name


def check_transport(settings: Settings) -> str | None:
    """Why the server must not start as set (None: it may), before any port
    opens: a TLS file it cannot use, or plaintext off loopback without
    EID_ALLOW_INSECURE. Logs how it will listen."""
    tls = settings.tls
    if tls is not None:
        try:
            material = load_tls(tls)
        except TlsSettingError as bad:
            return str(bad)
        if tls.mtls_listen is not None and settings.workers > 1 and tls.mtls_listen.endswith(":0"):
            return "EID_MTLS_LISTEN: several workers need a fixed port, not :0"
        log.info("TLS on %s with the certificate in %s", settings.listen, tls.cert_file)
        if material.client_ca is not None:
            log.info(
                "mutual TLS on %s: client certificates issued by %s required",
                tls.mtls_listen,
                tls.client_ca_file,
            )
        return None
    if is_local(settings.listen):
        return None
    if not settings.allow_insecure:
        return (
            f"EID_LISTEN {settings.listen} is reachable from other machines and TLS is off:"
            " set EID_TLS_CERT_FILE and EID_TLS_KEY_FILE, or EID_ALLOW_INSECURE=true if a"
            " proxy in front terminates TLS"
        )
    log.warning(
        "plaintext on %s (EID_ALLOW_INSECURE=true): API keys, passwords and tokens cross"
        " the network unencrypted unless a proxy in front terminates TLS",
        settings.listen,
    )
    return None


# gRPC sets SO_REUSEPORT unless told not to. A server that must be alone on
# its port passes this option; with an ephemeral port ("host:0") it must, or
# the kernel may hand it a port another process listens on (grpc/grpc#10755).
ALONE_ON_PORT = ("grpc.so_reuseport", 0)


def _bound(port: int, listen: str) -> int:
    if port == 0:
        raise RuntimeError(f"could not bind {listen}")
    return port


def add_ports(server: aio.Server, settings: Settings, listen: str) -> tuple[int, int | None]:
    """Opens `listen` (TLS if set, else plaintext) and the mutual-TLS port if
    set; their port numbers."""
    tls = settings.tls
    if tls is None:
        return _bound(server.add_insecure_port(listen), listen), None
    material = load_tls(tls)
    pair = [(material.private_key, material.certificate_chain)]
    port = _bound(server.add_secure_port(listen, grpc.ssl_server_credentials(pair)), listen)
    if material.client_ca is None or tls.mtls_listen is None:
        return port, None
    # Required, and verified against the parties' CA: grpcio cannot ask for a
    # certificate without requiring it, hence this port of its own.
    mutual = grpc.ssl_server_credentials(
        pair, root_certificates=material.client_ca, require_client_auth=True
    )
    return port, _bound(server.add_secure_port(tls.mtls_listen, mutual), tls.mtls_listen)
