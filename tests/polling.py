"""Waiting for what a server does on its own time, without asserting timing."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

_T = TypeVar("_T")


def until(check: Callable[[], _T], seconds: float, every: float = 0.01) -> _T:
    """Calls ``check`` every ``every`` seconds until it returns something
    truthy or ``seconds`` have passed; returns its last answer (falsy: it
    never held)."""
    give_up = time.monotonic() + seconds
    while not (found := check()) and time.monotonic() < give_up:
        time.sleep(every)
    return found
