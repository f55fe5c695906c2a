"""A relying party's status webhook: where it hears that a citizen it
verified was locked, unlocked or deactivated.

The URL must be https: events name citizens (by the party's pairwise
subject), and over plain http anyone on the path could read them and see
when a citizen's account changes. Plain http is accepted only to a loopback
host (a developer's machine, the tests), where nothing crosses a network.
Sign-in details in the URL are refused: proxies and logs keep URLs, and the
service's signature on every event is what proves it to the party.

A party setting its own URL (SetStatusWebhook) gets a stricter rule: https
to a host that is not localhost nor a private, loopback, link-local or
reserved address, so that a party cannot make the service POST into the
service's own network. An operator, who vets the party, may set any URL the
first rule allows (a party on a private link, a developer's machine). Host
names are not resolved here: a name pointing inside is for an egress proxy
to stop (README, "Status events")."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import SplitResult, urlsplit, urlunsplit

import idna

from eid_service.domain.errors import InvalidInput

MAX_URL_LENGTH = 2000


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _refuse(field: str, why: str) -> InvalidInput:
    return InvalidInput.of(field, "WEBHOOK_URL_INVALID", why)


def _ascii_host(parts: SplitResult, field: str) -> SplitResult:
    """The URL with its host as the HTTP client will send it. A host in other
    scripts is IDNA-encoded, and IDNA reads the ideographic and full-width
    full stops (U+3002, U+FF0E, U+FF61) as dots: checked as typed,
    https://127。0。0。1/ passed for a public name and reached 127.0.0.1
    (found by an attacker's pass)."""
    host = parts.hostname or ""
    try:
        # As httpx encodes a host that is not ASCII.
        encoded = idna.encode(host.lower()).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        raise _refuse(field, "not a valid host name") from None
    netloc = encoded if parts.port is None else f"{encoded}:{parts.port}"
    return parts._replace(netloc=netloc)


def parse_webhook_url(text: str, field: str) -> str:
    """The URL (stripped, its host in ASCII as it is sent), or InvalidInput
    WEBHOOK_URL_INVALID saying why."""
    url = text.strip()
    if not url:
        raise _refuse(field, "give the webhook's URL")
    if len(url) > MAX_URL_LENGTH or not url.isprintable() or " " in url:
        raise _refuse(field, f"a URL of at most {MAX_URL_LENGTH} characters, without spaces")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number or out of range
    except ValueError:
        raise _refuse(field, "not a URL") from None
    del port
    if parts.username is not None or parts.password is not None:
        raise _refuse(field, "no user name or password in the URL: the events are signed")
    if not (parts.hostname or "").isascii():
        parts = _ascii_host(parts, field)
        url = urlunsplit(parts)
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise _refuse(field, "an https:// URL, such as https://bank.example/eid/events")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise _refuse(field, "use https (plain http only to localhost, for development)")
    if parts.fragment:
        raise _refuse(field, "no #fragment: it is never sent")
    return url


def _private_name(host: str) -> bool:
    return host == "localhost" or host.endswith((".localhost", ".local", ".internal"))


# NAT64's well-known prefix: its addresses carry an IPv4 one in their last 32 bits.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Global, and so is any IPv4 address an IPv6 one carries (mapped, 6to4,
    Teredo, NAT64): those reach the IPv4 host they name."""
    if not address.is_global:
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return True
    carried = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
    if address in _NAT64:
        carried.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return all(v4 is None or v4.is_global for v4 in carried)


def _ipv4_in_disguise(host: str) -> bool:
    """A host the resolver reads as an IPv4 address though it is no dotted
    quad (2130706433, 0x7f000001, 127.1, 0177.0.0.1): inet_aton takes it."""
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True


def parse_public_webhook_url(text: str, field: str) -> str:
    """`parse_webhook_url`, and https to a public host only (a party's own
    choice); InvalidInput WEBHOOK_URL_NOT_PUBLIC otherwise."""
    url = parse_webhook_url(text, field)
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".").lower()
    try:
        public = _public_address(ipaddress.ip_address(host))
    except ValueError:
        public = not _private_name(host) and not _ipv4_in_disguise(host)
    if parts.scheme != "https" or not public:
        raise InvalidInput.of(
            field,
            "WEBHOOK_URL_NOT_PUBLIC",
            "an https URL on a public host (an operator can set a private one)",
        )
    return url
