"""Command-line options shared by `eid`, `eid-loadgen` and the bench."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from eid_client.client import DEFAULT_TARGET
from eid_client.tls import Tls

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
    """--target, --api-key, --timeout, TLS and --json, read from EID_* where set."""
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
    add_tls_options(group, default)


def add_tls_options(group: argparse._ArgumentGroup, default: Default) -> None:
    """--tls, --ca-cert, --client-cert and --client-key (env EID_TLS, EID_CA_CERT, ...)."""
    env = os.environ.get
    group.add_argument(
        "--tls",
        action="store_true",
        default=default(env("EID_TLS", "").strip().lower() in {"1", "true", "yes", "on"}),
        help="connect over TLS, trusting the system's roots (env EID_TLS=1; implied by"
        " --ca-cert or --client-cert)",
    )
    for flag, var, what in (
        ("--ca-cert", "EID_CA_CERT", "PEM root certificate(s) to trust instead of the system's"),
        ("--client-cert", "EID_CLIENT_CERT", "PEM client certificate, for a server that asks"),
        ("--client-key", "EID_CLIENT_KEY", "PEM private key of --client-cert"),
    ):
        group.add_argument(
            flag, metavar="FILE", default=default(env(var)), help=f"{what} (env {var})"
        )


def tls_from_args(args: argparse.Namespace) -> Tls | bool:
    """The clients' ``tls=`` for the parsed TLS options (ValueError: a
    certificate without its key, or the reverse)."""
    if args.ca_cert or args.client_cert or args.client_key:
        return Tls(
            root_certificates=args.ca_cert or None,
            client_certificate=args.client_cert or None,
            client_key=args.client_key or None,
        )
    return bool(args.tls)
