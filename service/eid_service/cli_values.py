"""Option values the operator's commands check, as argparse types: a value
out of range is refused with exit status 2 before anything runs, not found
out as a driver's overflow or an empty answer."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def whole_number(
    low: int, high: int | None = None, *, out_of_range: str | None = None
) -> Callable[[str], int]:
    """A whole number from `low` to `high` (no upper bound when None); digits
    may be grouped with "_" or ","; `out_of_range` says what is taken."""
    said = out_of_range or (f"{low} or more" if high is None else f"{low} to {high:,}")

    def parse(text: str) -> int:
        try:
            value = int(text.replace(",", ""))  # int() takes "_" itself
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(said)
        return value

    return parse
