"""Waiting for what a server does on its own time, without asserting timing."""

from __future__ import annotations

import signal
import subprocess
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


def log_until_stopped(process: subprocess.Popen[str], marker: str) -> tuple[list[str], str]:
    """The lines of `process`'s piped stderr up to the first holding `marker`
    (or its end), then, after a SIGTERM, the rest of them: every line it
    logged. Also what it printed on stdout, if that is piped too."""
    assert process.stderr is not None
    lines: list[str] = []
    try:
        for line in process.stderr:
            lines.append(line.rstrip("\n"))
            if marker in line:
                break
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        out, rest = process.communicate(timeout=60)
    return lines + (rest or "").splitlines(), out or ""
