"""Credentials carried in call metadata."""

from __future__ import annotations

import functools
import ipaddress
import re
import urllib.parse
from typing import Any

from grpc import aio

from eid_service.security.tls import certificate_sha256

API_KEY_HEADER = "x-api-key"
AUTHORIZATION_HEADER = "authorization"
OFFICER_KEY_HEADER = "x-officer-key"
TRACEPARENT_HEADER = "traceparent"
# Version 00 has exactly these fields; later versions may append more.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")


def _header(context: aio.ServicerContext[Any, Any], name: str) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == name:
            return value if isinstance(value, str) else value.decode("ascii", "replace")
    return None


def traceparent(context: aio.ServicerContext[Any, Any]) -> tuple[str, str, str] | None:
    """The trace id, parent span id and flags (lowercase hex) of the W3C
    `traceparent` header the caller sent ("00-<32 hex trace id>-<16 hex
    parent id>-<2 hex flags>"); None without one, or for one that is not well
    formed."""
    value = _header(context, TRACEPARENT_HEADER)
    if value is None:
        return None
    found = _TRACEPARENT.fullmatch(value.strip().lower())
    if found is None:
        return None
    version, trace, parent, flags, more = found.groups()
    if version == "ff" or (version == "00" and more) or trace == "0" * 32 or parent == "0" * 16:
        return None
    return trace, parent, flags


def trace_id(context: aio.ServicerContext[Any, Any]) -> str | None:
    """The caller's trace id (see `traceparent`), for the audit log and the
    access log. Traced, the server's span joins this trace."""
    found = traceparent(context)
    return None if found is None else found[0]


def api_key(context: aio.ServicerContext[Any, Any]) -> str | None:
    return _header(context, API_KEY_HEADER)


def officer_key(context: aio.ServicerContext[Any, Any]) -> str | None:
    return _header(context, OFFICER_KEY_HEADER)


def bearer_token(context: aio.ServicerContext[Any, Any]) -> str | None:
    value = _header(context, AUTHORIZATION_HEADER)
    if value is None:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


# The certificate grpc verified, as PEM; absent on plaintext and server-only TLS.
_PEER_CERTIFICATE = "x509_pem_cert"


@functools.lru_cache(maxsize=1024)
def _fingerprint(pem: bytes) -> bytes:
    # A party's connections show the same PEM call after call: parse it once.
    return certificate_sha256(pem)


def client_certificate_sha256(context: aio.ServicerContext[Any, Any]) -> bytes | None:
    """SHA-256 (of the DER) of the client certificate this call's TLS
    connection was verified with; None without one."""
    for pem in context.auth_context().get(_PEER_CERTIFICATE, ()):
        return _fingerprint(pem)
    return None


def client_address(context: aio.ServicerContext[Any, Any], trusted_proxies: frozenset[str]) -> str:
    """Where a call comes from, for throttling: the peer's IP address or, when
    the peer is a trusted proxy (a load balancer), the last address it added
    to x-forwarded-for (earlier ones are whatever the client claimed). IPv6
    clients count by /64, the block one subscriber gets."""
    # grpcio percent-encodes the brackets: "ipv6:%5B2001:db8::1%5D:5000".
    peer = urllib.parse.unquote(context.peer() or "")
    kind, _, rest = peer.partition(":")
    if kind == "ipv6":
        host = rest.rsplit("]:", 1)[0].lstrip("[")
    elif kind == "ipv4":
        host = rest.rsplit(":", 1)[0]
    else:
        host = peer
    if host in trusted_proxies:
        forwarded = _header(context, "x-forwarded-for")
        claimed = forwarded.rsplit(",", 1)[-1].strip() if forwarded else ""
        if _address(claimed):
            host = claimed
    return _address(host) or "unknown"


def _address(text: str) -> str:
    """The address as a throttling key ("" if it is not an IP address)."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return ""
    if address.version == 6:
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            # An IPv4 client as a dual-stack socket, a proxy or a NAT64
            # translator writes it: counted by its own address, not as one
            # /64 with every other IPv4 client.
            return str(embedded)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


# IPv6 forms that carry an IPv4 client's address in their last 32 bits: the
# NAT64 well-known prefix (RFC 6052), IPv4-translated (::ffff:0:a.b.c.d,
# RFC 2765) and IPv4-compatible (::a.b.c.d, deprecated); "::ffff:a.b.c.d"
# is `ipv4_mapped` (found in review: only that one was recognised).
_IPV4_IN_IPV6 = (
    ipaddress.ip_network("64:ff9b::/96"),
    ipaddress.ip_network("::ffff:0:0:0/96"),
    ipaddress.ip_network("::/96"),
)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if int(address) >> 32 == 0 and int(address) < 2**16:
        return None  # "::" and "::1": not an IPv4 client's address
    if any(address in network for network in _IPV4_IN_IPV6):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None
