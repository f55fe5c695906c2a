"""How a sender says a delivery failed, and what of it may be stored.

`detail` is written by our own code (a status code, a phase), never taken
from the message or from what a server answered, so it can be logged and
kept in the outbox."""

from __future__ import annotations

MAX_ERROR_LENGTH = 120


class DeliveryFailed(Exception):
    """Worth retrying later: a timeout, a 5xx, a dropped connection."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Undeliverable(DeliveryFailed):
    """Retrying cannot help (a 4xx, a refused recipient): dead at once."""


def describe(error: BaseException) -> str:
    """The class of an error, plus our own detail for DeliveryFailed; never
    the error's message (a library may put an address or a URL in it)."""
    name = type(error).__name__
    if isinstance(error, DeliveryFailed):
        name = f"{name}: {error.detail}"
    return name[:MAX_ERROR_LENGTH]
