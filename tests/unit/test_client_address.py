"""Where a call comes from, as the key wrong passwords are counted under."""

from __future__ import annotations

from typing import Any, cast

import pytest

from eid_service.api.metadata import client_address

PROXY = frozenset({"10.0.0.5", "2001:db8::1"})


class _Context:
    def __init__(self, peer: str, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        self._peer, self._metadata = peer, metadata

    def peer(self) -> str:
        return self._peer

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("ipv4:198.51.100.7:5000", "", "198.51.100.7"),
        # Only a trusted proxy may name the client; a client cannot.
        ("ipv4:198.51.100.7:5000", "203.0.113.1", "198.51.100.7"),
        ("ipv4:10.0.0.5:5000", "1.2.3.4, 203.0.113.1", "203.0.113.1"),
        # Garbage in the header falls back to the proxy itself.
        ("ipv4:10.0.0.5:5000", "not-an-address", "10.0.0.5"),
        # IPv6 clients count by /64: a subscriber cannot rotate addresses for budget.
        ("ipv6:[2001:db8:1:2:aaaa::1]:5000", "", "2001:db8:1:2::/64"),
        ("ipv6:[2001:db8:1:2:bbbb::9]:5000", "", "2001:db8:1:2::/64"),
        # As grpcio really reports IPv6 peers: brackets percent-encoded.
        ("ipv6:%5B2001:db8:1:2:aaaa::1%5D:5000", "", "2001:db8:1:2::/64"),
        ("ipv6:%5B2001:db8:ffff::9%5D:6000", "", "2001:db8:ffff::/64"),
        ("ipv6:%5B2001:db8::1%5D:1", "198.51.100.7", "198.51.100.7"),
        # IPv4 clients in IPv6 form (a dual-stack socket, a proxy's header) are
        # each their own source, not all one /64 (found by an attacker's pass).
        ("ipv6:%5B::ffff:198.51.100.7%5D:5000", "", "198.51.100.7"),
        ("ipv6:%5B::ffff:203.0.113.9%5D:5000", "", "203.0.113.9"),
        ("ipv4:10.0.0.5:5000", "::ffff:203.0.113.1", "203.0.113.1"),
        # ... and those a NAT64 translator writes, or the older forms (found in review).
        ("ipv6:%5B64:ff9b::198.51.100.7%5D:5000", "", "198.51.100.7"),
        ("ipv6:%5B64:ff9b::203.0.113.9%5D:5000", "", "203.0.113.9"),
        ("ipv6:%5B::ffff:0:203.0.113.9%5D:5000", "", "203.0.113.9"),
        ("ipv6:%5B::198.51.100.7%5D:5000", "", "198.51.100.7"),
        ("ipv6:%5B::1%5D:5000", "", "::/64"),
        ("unix:/run/eid.sock", "", "unknown"),
    ],
)
def test_the_source_of_a_call(peer: str, forwarded: str, expected: str) -> None:
    metadata = (("x-forwarded-for", forwarded),) if forwarded else ()
    context = cast(Any, _Context(peer, metadata))
    assert client_address(context, PROXY) == expected
