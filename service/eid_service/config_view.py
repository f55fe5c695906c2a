"""`eid-server config`: the effective settings, secrets masked.

A secret is a field declared with `field(repr=False)` (the SMTP password, the
SMS webhook secret, ...) or named like one (`..._password`, `..._secret`,
`..._token`, ...), and the password inside any URL
(the database's included). Key and certificate files are shown by path only:
nothing here opens them."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from datetime import timedelta
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "********"
_SECRET_NAME = re.compile(r"(^|_)(password|secret|token|api_key|private_key)$")


def _mask_url(value: str) -> str:
    """The URL with its password (if any) masked; other text as it is."""
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:
        return value
    if not parts.scheme or password is None:
        return value
    user, _, host = parts.netloc.rpartition("@")
    name = user.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{name}:{MASK}@{host}"))


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
        return _mask_url(value)
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
