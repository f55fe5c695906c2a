"""`eid-server config`: the effective settings, secrets masked.

A secret is a field declared with `field(repr=False)` (the SMTP password, the
SMS webhook secret, ...) or named like one (`..._password`, `..._secret`,
`..._token`, ...), and in any URL (the database's included, and those of the
telemetry variables) the password, every query value and the fragment; a URL
that cannot be parsed is masked whole. Key and certificate files are shown by
path only: nothing here opens them."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from datetime import timedelta
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

MASK = "********"
UNPARSEABLE_URL = "(a URL that cannot be parsed, masked)"
_SECRET_NAME = re.compile(r"(^|_)(password|secret|token|api_key|private_key)$")


def mask_url(value: str) -> str:
    """The URL with its password, query values and fragment masked; other text
    as it is."""
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:
        # A mistyped host ("[db"): where a password in it ends is a guess.
        return UNPARSEABLE_URL
    if ":" in parts.netloc and "@" in parts.path + parts.query + parts.fragment:
        # A password with "/", "?" or "#" typed unencoded (the database
        # driver takes it): urlsplit ends the host early, inside the password.
        return UNPARSEABLE_URL
    # On a web address a user name alone is a token ("https://sk_live_…@host"),
    # kept by the gateway's own link (found in review); a database's is a role.
    token_user = password is None and parts.username and parts.scheme in ("http", "https")
    if not parts.scheme or (
        password is None and not token_user and not parts.query and not parts.fragment
    ):
        return value
    # Rebuilt from the text as typed: urlunsplit drops an empty host's "//",
    # and "sqlite:////srv/eid.db" would read as another file.
    head = re.split(r"[?#]", value, maxsplit=1)[0]
    if password is not None:
        user = parts.netloc.rpartition("@")[0]
        if f"{user}@" not in head:  # urlsplit dropped a tab or newline in it
            return UNPARSEABLE_URL
        head = head.replace(f"{user}@", f"{user.split(':', 1)[0]}:{MASK}@", 1)
    elif token_user:
        user = parts.netloc.rpartition("@")[0]
        if f"{user}@" not in head:
            return UNPARSEABLE_URL
        head = head.replace(f"{user}@", f"{MASK}@", 1)
    # Every value, not only secret-looking names: libpq takes ?password=,
    # gateways ?api_key=, ?key=, ?sig=... The names still say what is set.
    query = "?" + "&".join(_masked_parameter(p) for p in parts.query.split("&"))
    return head + (query if parts.query else "") + (f"#{MASK}" if parts.fragment else "")


def _masked_parameter(parameter: str) -> str:
    name, is_pair, _ = parameter.partition("=")
    if is_pair:
        return f"{name}={MASK}"
    return MASK if parameter else ""  # a bare "?token" is a value too


def _shown(value: Any) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, timedelta):
        return f"{value.total_seconds():g}s"
    if isinstance(value, frozenset | set | tuple | list):
        return ",".join(sorted(_shown(v) for v in value)) or "(none)"
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str):
        return mask_url(value)
    return str(value)


def settings_lines(settings: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(dotted name, value as shown) for every field, nested ones flattened."""
    for f in dataclasses.fields(settings):
        name, value = f"{prefix}{f.name}", getattr(settings, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            yield from settings_lines(value, f"{name}.")
        elif value is not None and (not f.repr or _SECRET_NAME.search(f.name)):
            yield name, MASK
        else:
            yield name, _shown(value)


def environment_lines(environ: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    """(name, value as shown) for the logging and telemetry variables, read by
    their set-up rather than Settings: headers masked whole (they carry
    credentials), URLs (an OTLP endpoint) as in settings."""
    for name in sorted(n for n in environ if n.startswith(("EID_LOG_", "OTEL_"))):
        yield name, MASK if "HEADERS" in name else mask_url(environ[name])
