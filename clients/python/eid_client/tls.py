"""TLS for the clients: the server's certificate checked against given roots
(else the system's), and a client certificate when the server asks for one
(mutual TLS). Certificates and keys are PEM, given as bytes or a file path."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import grpc

Pem = bytes | str | os.PathLike[str]


def read_pem(value: Pem | None, what: str) -> bytes | None:
    """PEM bytes as given, or read from the file a path names."""
    if value is None or isinstance(value, bytes):
        return value
    path = Path(value)
    try:
        return path.read_bytes()
    except OSError as e:
        raise ValueError(f"cannot read the {what} file {path}: {e.strerror}") from None


@dataclasses.dataclass(frozen=True)
class Tls:
    """How to reach the server over TLS. ``Tls()`` trusts the system's roots;
    ``root_certificates`` (a private CA) replaces them; ``client_certificate``
    and ``client_key`` (together) answer a server that requires one (mTLS)."""

    root_certificates: Pem | None = None
    client_certificate: Pem | None = None
    client_key: Pem | None = None

    def __post_init__(self) -> None:
        if (self.client_certificate is None) != (self.client_key is None):
            raise ValueError(
                "a client certificate needs its private key, and a key its certificate"
            )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=read_pem(self.root_certificates, "root certificates"),
            private_key=read_pem(self.client_key, "client key"),
            certificate_chain=read_pem(self.client_certificate, "client certificate"),
        )


def credentials_for(
    tls: Tls | bool, credentials: grpc.ChannelCredentials | None
) -> grpc.ChannelCredentials | None:
    """The channel credentials the clients' ``tls=`` and ``credentials=``
    ask for; None: a plaintext channel (local development only)."""
    if credentials is not None:
        if tls:
            raise ValueError("pass tls= or credentials=, not both")
        return credentials
    if tls is False:
        return None
    return (Tls() if tls is True else tls).channel_credentials()
