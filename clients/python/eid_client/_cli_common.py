"""How ``eid`` subcommands and their common options are declared (see cli.py)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from textwrap import dedent, indent
from typing import TypeAlias

from eid_client._output import Output
from eid_client.cli_args import add_connection_options, defaults_for
from eid_client.client import EidClient

Handler = Callable[[argparse.Namespace, EidClient, Output], int]
# Help examples show values as the server makes them (from a throw-away server).
SHARE_EXAMPLE = (
    "eid2.eyJhdWQiOm51bGwsImV4cCI6MTc5NTUzMDYzOCwiaWF0IjoxNzk1NTMwMzM4LCJraWQiOiJrNmNucXoiLCJz"
    "aWQiOiJzaHJfYzE4YjRmYzUyZmZkZTMyZWM0ZjY2MjI4Njc4NzhhZGYifQ.Kq_vHfWk4Q6N7Djy5lzAtw"
)
SESSION_EXAMPLE = "eids_xVIqfID238v6IhHrT6kkD2CS1Teg9sGMWryzVQZ7m7g"
# A string: _SubParsersAction is generic only to type checkers.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    add_connection_options(
        parser.add_argument_group("connection and output"),
        defaults_for(suppress),
        timeout=10.0,
        api_key_help="relying-party API key for request-otp, verify and redeem",
        json_help="print the response as JSON instead of a table",
    )


def subcommand(
    subparsers: Subparsers,
    name: str,
    handler: Handler,
    summary: str,
    examples: str,
    *,
    aliases: tuple[str, ...] = (),
    details: str = "",
) -> argparse.ArgumentParser:
    """``summary`` is one line (listed by ``eid --help``); ``details``, wrapped
    by hand, follow it in ``eid NAME --help``."""
    description = summary + ("\n\n" + dedent(details).strip("\n") if details else "")
    parser = subparsers.add_parser(
        name,
        aliases=list(aliases),
        help=summary,
        description=description,
        epilog="examples:\n" + indent(dedent(examples).strip("\n"), "  "),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    global_options(parser, suppress=True)
    parser.set_defaults(handler=handler)
    return parser


def id_option(parser: argparse.ArgumentParser, what: str = "12-digit personal ID number") -> None:
    parser.add_argument("--id", "--personal-id", dest="id", required=True, help=what)


def password_option(parser: argparse.ArgumentParser, what: str) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--password",
        metavar="PW",
        help=f"{what} (else $EID_PASSWORD, else prompted; visible to other users on the "
        "command line, so prefer the prompt or --password-stdin)",
    )
    group.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )


def request_id_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--request-id",
        metavar="ID",
        help="idempotency key; reuse it to retry safely (default: a new UUID)",
    )


def session_option(parser: argparse.ArgumentParser | argparse._MutuallyExclusiveGroup) -> None:
    parser.add_argument(
        "--session",
        "--session-token",
        dest="session",
        metavar="TOKEN",
        default=os.environ.get("EID_SESSION"),
        help="a session token from `eid signin` (env EID_SESSION)",
    )


def dependant_option(parser: argparse.ArgumentParser, acting: str) -> None:
    """--dependant: a guardian acting for a child (`acting`: what they do)."""
    parser.add_argument(
        "--dependant",
        default="",
        metavar="ACCOUNT_ID",
        help=f"a guardian {acting} (account ID from `eid dependants`)",
    )


def contact_options(parser: argparse.ArgumentParser) -> None:
    contact = parser.add_mutually_exclusive_group(required=True)
    contact.add_argument("--phone", help="the phone number the account was registered with")
    contact.add_argument("--email", help="the email the account was registered with")
