"""Parsing of the load options: durations (``30s``, ``2m``, ``500ms``), warm-ups
(a duration or a number of calls) and rates."""

from __future__ import annotations

import argparse
import math
import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def duration(text: str) -> float:
    """``30s``, ``1.5s``, ``500ms``, ``2m``, ``1h``, or a number of seconds."""
    found = _DURATION.match(text)
    if found is None:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 30s, 500ms, 2m)")
    seconds = float(found.group(1)) * _UNIT_SECONDS[found.group(2)]
    if seconds <= 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return seconds


def warmup(text: str) -> tuple[int | None, float | None]:
    """(calls, seconds): ``100`` is 100 calls, ``5s`` five seconds."""
    if text.strip().isdigit():
        calls = int(text)
        if calls < 1:
            raise argparse.ArgumentTypeError("must be at least 1 call")
        return calls, None
    return None, duration(text)


def rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of calls a second: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError("must be more than 0 calls a second")
    return value
