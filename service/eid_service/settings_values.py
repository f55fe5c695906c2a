"""Reading one EID_* variable: each reader names the variable in its error, so
a bad setting stops the server at start with a message that says which one
(and never echoes a value that may hold a password)."""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
DATABASE_KINDS = ("sqlite", "postgresql")


class SettingError(ValueError):
    """A setting's value that cannot be used; the message starts with its name."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name} {problem}")
        self.name = name


def flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise SettingError(name, f"must be true or false, not {raw!r}")


def integer(env: Mapping[str, str], name: str, default: int, *, minimum: int | None = None) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingError(name, f"must be a whole number, not {raw!r}") from None
    if minimum is not None and value < minimum:
        raise SettingError(name, f"must be at least {minimum}, not {value}")
    return value


def number(
    env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0, above: bool = False
) -> float:
    """A finite number of at least `minimum` (more than it, with `above`)."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingError(name, f"must be a number, not {raw!r}") from None
    if not math.isfinite(value):
        raise SettingError(name, f"must be a finite number, not {raw!r}")
    if value < minimum or (above and value == minimum):
        bound = "more than" if above else "at least"
        raise SettingError(name, f"must be {bound} {minimum:g}, not {raw}")
    return value


def split_listen(listen: str) -> tuple[str, int] | None:
    """(host, port) of a TCP address as gRPC takes it ("[::]:50051",
    "0.0.0.0:50051"); None for a Unix socket; ValueError if neither."""
    if listen.startswith(("unix:", "unix-abstract:")):
        return None
    host, colon, port = listen.rpartition(":")
    if not colon or not port.isdigit() or int(port) > 65535:
        raise ValueError("must be host:port with a port from 0 to 65535 (or unix:PATH)")
    return host.removeprefix("[").removesuffix("]"), int(port)


def listen_address(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip() or default
    try:
        split_listen(value)
    except ValueError as bad:
        raise SettingError(name, f"{bad}, not {value!r}") from None
    return value


def database_url(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip() or default
    try:
        kind = make_url(value).get_backend_name()
    except ArgumentError:
        # The value is not repeated: a URL may carry a password.
        raise SettingError(
            name, "is not a database URL (sqlite:///PATH or postgresql://...)"
        ) from None
    if kind not in DATABASE_KINDS:
        raise SettingError(name, f"must be a sqlite or postgresql URL, not {kind}")
    return value


def ip_addresses(env: Mapping[str, str], name: str) -> frozenset[str]:
    found = frozenset(p.strip() for p in env.get(name, "").split(",") if p.strip())
    for address in found:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise SettingError(name, f"lists IP addresses only, not {address!r}") from None
    return found
