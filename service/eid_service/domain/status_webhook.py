"""A relying party's status webhook: where it hears that a citizen it
verified was locked, unlocked or deactivated.

The URL must be https: events name citizens (by the party's pairwise
subject), and over plain http anyone on the path could read them and see
when a citizen's account changes. Plain http is accepted only to a loopback
host (a developer's machine, the tests), where nothing crosses a network.
Sign-in details in the URL are refused: proxies and logs keep URLs, and the
service's signature on every event is what proves it to the party."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

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


def parse_webhook_url(text: str, field: str) -> str:
    """The URL as given (stripped), or InvalidInput WEBHOOK_URL_INVALID saying why."""
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
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise _refuse(field, "an https:// URL, such as https://bank.example/eid/events")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise _refuse(field, "use https (plain http only to localhost, for development)")
    if parts.username is not None or parts.password is not None:
        raise _refuse(field, "no user name or password in the URL: the events are signed")
    if parts.fragment:
        raise _refuse(field, "no #fragment: it is never sent")
    return url
