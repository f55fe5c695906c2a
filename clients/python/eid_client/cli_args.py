"""Command-line options shared by `eid`, `eid-loadgen` and the bench."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from eid_client.client import DEFAULT_TARGET

Default = Callable[[object], object]


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def defaults_for(suppress: bool) -> Default:
    """Options are declared on the main parser (real defaults) and on every
    subcommand with SUPPRESS defaults, so they may come before or after it."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    return default


def add_connection_options(
    group: argparse._ArgumentGroup,
    default: Default,
    *,
    timeout: float,
    api_key_help: str,
    json_help: str,
) -> None:
    """--target, --api-key, --timeout and --json, read from EID_* where set."""
    group.add_argument(
        "--target",
        metavar="HOST:PORT",
        default=default(os.environ.get("EID_TARGET", DEFAULT_TARGET)),
        help=f"server address host:port (env EID_TARGET, default {DEFAULT_TARGET})",
    )
    group.add_argument(
        "--api-key",
        metavar="KEY",
        default=default(os.environ.get("EID_API_KEY")),
        help=f"{api_key_help} (env EID_API_KEY)",
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=default(timeout),
        metavar="SECONDS",
        help=f"deadline of each call (default {timeout:g})",
    )
    group.add_argument("--json", action="store_true", default=default(False), help=json_help)
