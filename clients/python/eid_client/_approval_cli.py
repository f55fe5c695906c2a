"""The approval flow in ``eid``: the relying party's ``approval start`` and
``approval wait`` (API key), the citizen's ``approvals``, ``approve``,
``decline`` and ``claim`` (session); what they do is in _approval_commands.py."""

from __future__ import annotations

import argparse

from eid_client import _approval_commands as commands
from eid_client._cli_common import Subparsers, request_id_option, session_option, subcommand
from eid_client._verify_cli import scopes_option
from eid_client.cli_args import positive_int

_FLOW = """
    The party starts a request for an ID number (or, with --qr, for whoever scans
    its QR code with the eid app) and shows the verification code beside its
    prompt; the citizen's app lists the request with the same code, and the
    citizen approves it with that code or declines it. `eid approval wait` then
    answers like `eid verify`: verified with the released attributes, the
    pairwise subject and a signed receipt, or why not (declined, wrong code,
    expired). A request expires after 2 minutes; at most 3 per citizen every 2
    minutes per party. The answer to start is the same whether or not the ID
    number has an account.
"""


def add_commands(sub: Subparsers) -> None:
    group = subcommand(
        sub,
        "approval",
        commands.action_missing,
        "Relying party: ask a citizen to approve on their phone (start, wait; needs --api-key).",
        """
          eid --api-key $KEY approval start --id 001190791514 --message "Sign in to Demo Bank"
          eid --api-key $KEY approval wait apr_01b5ccfcb355081658966085
          eid --api-key $KEY approval start --id 001190791514 --scopes basic --wait
          eid --api-key $KEY approval start --qr --png login.png --wait
        """,
        details=_FLOW,
    )
    actions = group.add_subparsers(title="actions", metavar="ACTION", required=True)
    p = subcommand(
        actions,
        "start",
        commands.start,
        "Start a request; prints its id and the verification code to show the citizen.",
        """
          eid --api-key $KEY approval start --id 001190791514
          eid --api-key $KEY approval start --id 001190791514 --scopes basic,id_number --wait
          eid --api-key $KEY approval start --qr --png login.png   # for the citizen to scan
          eid --api-key $KEY --json approval start --id 001190791514 | jq -r .approval_id
        """,
        details=_FLOW,
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--id", "--personal-id", dest="id", help="the citizen's personal ID number")
    who.add_argument(
        "--qr", action="store_true", help="no ID number: a QR code the citizen's app scans"
    )
    p.add_argument("--message", default="", help="a note the app shows (at most 100 characters)")
    p.add_argument("--png", metavar="FILE", help="with --qr: also write the QR code as PNG")
    p.add_argument("--svg", metavar="FILE", help="with --qr: also write the QR code as SVG")
    p.add_argument(
        "--wait", action="store_true", help="then wait for the outcome, as `approval wait` does"
    )
    _wait_options(p)
    request_id_option(p)

    p = subcommand(
        actions,
        "wait",
        commands.wait,
        "Wait for the citizen's decision; prints the verification, or why not (exit 1).",
        """
          eid --api-key $KEY approval wait apr_01b5ccfcb355081658966085
          eid --api-key $KEY --json approval wait apr_01b5ccfcb355081658966085 --scopes basic
        """,
        details="""
            Waits until the citizen decides or the request expires (or --within
            seconds pass). An approval verifies once; rerun with the same
            --request-id to get a lost answer again.
        """,
    )
    p.add_argument("approval_id", metavar="APPROVAL_ID", help="from `eid approval start`")
    _wait_options(p)
    request_id_option(p)
    _add_citizen_commands(sub)


def _wait_options(p: argparse.ArgumentParser) -> None:
    scopes_option(p)
    p.add_argument(
        "--within",
        type=positive_int,
        default=130,
        metavar="SECONDS",
        help="give up waiting after this long (default 130: past the request's 2 minutes)",
    )


def _add_citizen_commands(sub: Subparsers) -> None:
    p = subcommand(
        sub,
        "approvals",
        commands.approvals,
        "Citizen: the approval requests waiting for your decision, newest first.",
        """
          eid approvals                       # the session in EID_SESSION
          eid approve apr_01b5ccfcb355081658966085 --code 4821
          eid decline apr_01b5ccfcb355081658966085
        """,
    )
    session_option(p)
    p.add_argument("--page-size", type=positive_int, default=0, metavar="N", help="per page")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="every page, not only the first")
    which.add_argument("--page-token", default="", metavar="TOKEN", help="the page after")

    p = subcommand(
        sub,
        "approve",
        commands.approve,
        "Citizen: approve a request, confirming the code the relying party shows.",
        """
          eid approve apr_01b5ccfcb355081658966085 --code 4821
        """,
        details="""
            Check that the party's screen shows the same code as `eid approvals`,
            then confirm it. A wrong code is refused and voids the request.
            Approving releases the attributes the request asks for to that party.
        """,
    )
    p.add_argument("approval_id", metavar="APPROVAL_ID", help="from `eid approvals`")
    p.add_argument("--code", required=True, help="the 4-digit code the relying party shows")
    session_option(p)
    request_id_option(p)

    p = subcommand(
        sub,
        "decline",
        commands.decline,
        "Citizen: decline a request (the party is told APPROVAL_DECLINED).",
        """
          eid decline apr_01b5ccfcb355081658966085
        """,
    )
    p.add_argument("approval_id", metavar="APPROVAL_ID", help="from `eid approvals`")
    session_option(p)
    request_id_option(p)

    p = subcommand(
        sub,
        "claim",
        commands.claim,
        "Citizen: take the request of a relying party's QR code as yours, to approve it.",
        """
          eid claim --image login.png
          eid claim eidapr1.qa0yvDpVjj7pregwur-rJyGDqnpZZ6OD
        """,
    )
    scanned = p.add_mutually_exclusive_group(required=True)
    scanned.add_argument("token", nargs="?", help="the text of the party's QR code")
    scanned.add_argument("--image", metavar="FILE", help="a photo or screenshot of the QR code")
    session_option(p)
    request_id_option(p)
