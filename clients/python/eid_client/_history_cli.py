"""``eid history``: the signed-in citizen's access history, which relying party
verified them (or tried to), when, how and what it was given, newest first."""

from __future__ import annotations

import argparse

from eid.v1 import identity_service_pb2 as pb
from eid_client import _output
from eid_client import _verify_output as show
from eid_client._cli_common import Subparsers, dependant_option, session_option, subcommand
from eid_client._commands import session_of
from eid_client._output import Output
from eid_client.cli_args import positive_int
from eid_client.client import EidClient


def add_commands(sub: Subparsers) -> None:
    p = subcommand(
        sub,
        "history",
        history,
        "Citizen: who verified you (or tried to), when, how and what they got; newest first.",
        """
          eid history                                # the session in EID_SESSION
          eid history --page-token ZXZ0X2U5NGE0YWU2ZTE5NDIzMzZlYTUy   # printed under a page
          eid history --all
          eid --json history --all | jq -r '.records[] | select(.verified) | .receipt'
          eid history --dependant acc_4a1f0c2e9b7d4e6f8a3c5b1d2e   # your child's
        """,
        details="""
            One line per verification by a relying party: the time, the party, the
            method (PASSWORD, QR_SHARE, ONE_TIME_CODE, DEMOGRAPHIC), whether you were
            verified and the attributes released to it. One page at a time (--page-size,
            default 20) unless --all; --json adds each verification's id and the signed
            receipt the party got, which `eid verify-receipt` checks offline.
        """,
    )
    session_option(p)
    dependant_option(p, "reading a dependant's history")
    p.add_argument(
        "--page-size",
        type=positive_int,
        default=0,
        metavar="N",
        help="records per page, at most 100 (default: the server's, 20)",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="every page, not only the first")
    which.add_argument(
        "--page-token",
        default="",
        metavar="TOKEN",
        help="the page after the one that printed this token",
    )


def history(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    token = session_of(args, "history")
    if args.all:
        records = list(
            client.iter_access_history(
                page_size=args.page_size, session_token=token, dependant_account_id=args.dependant
            )
        )
        page = pb.ListAccessHistoryResponse(records=records)
    else:
        page = client.list_access_history(
            args.page_size, args.page_token, token, dependant_account_id=args.dependant
        )
    if out.as_json:
        out.json(page)
        return 0
    if not page.records:
        out.raw("No more records." if args.page_token else "No verifications yet.")
    else:
        out.grid(
            "Access history",
            show.history_columns,
            [show.history_cells(r) for r in page.records],
            caption=f"newest first; times in {_output.local_zone()}",
        )
    if page.next_page_token:
        out.hint("More (or --all):")
        dependant = f" --dependant {_output.shell_word(args.dependant)}" if args.dependant else ""
        out.hint(
            f"  eid history --page-token {_output.shell_word(page.next_page_token)}{dependant}"
        )
    return 0
