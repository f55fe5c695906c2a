"""The approval flow in ``eid``: the relying party's ``approval start`` and
``approval wait`` (API key), the citizen's ``approvals``, ``approve``,
``decline`` and ``claim`` (session), each declared beside what it does."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from eid.v1 import identity_service_pb2 as pb
from eid_client import _approval_output as show
from eid_client import _output, qr
from eid_client._cli_common import Subparsers, request_id_option, session_option, subcommand
from eid_client._commands import UsageError, require_api_key, session_of
from eid_client._output import Output
from eid_client._verify_cli import scopes_option
from eid_client._verify_output import print_verification
from eid_client.cli_args import positive_int
from eid_client.client import EidClient
from eid_client.errors import EidError

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
        _action_missing,
        "Relying party: ask a citizen to approve on their phone (start, wait; needs --api-key).",
        """
          eid --api-key $KEY approval start --id 001190791514 --message "Sign in to Demo Bank"
          eid --api-key $KEY approval wait apr_0123456789abcdef01234567
          eid --api-key $KEY approval start --id 001190791514 --scopes basic --wait
          eid --api-key $KEY approval start --qr --png login.png --wait
        """,
        details=_FLOW,
    )
    actions = group.add_subparsers(title="actions", metavar="ACTION", required=True)
    p = subcommand(
        actions,
        "start",
        start,
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
        wait,
        "Wait for the citizen's decision; prints the verification, or why not (exit 1).",
        """
          eid --api-key $KEY approval wait apr_0123456789abcdef01234567
          eid --api-key $KEY --json approval wait apr_0123456789abcdef01234567 --scopes basic
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
        approvals,
        "Citizen: the approval requests waiting for your decision, newest first.",
        """
          eid approvals                       # the session in EID_SESSION
          eid approve apr_0123456789abcdef01234567 --code 4821
          eid decline apr_0123456789abcdef01234567
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
        approve,
        "Citizen: approve a request, confirming the code the relying party shows.",
        """
          eid approve apr_0123456789abcdef01234567 --code 4821
        """,
        details="""
            Check that the party's screen shows the same code as `eid approvals`,
            then confirm it. A wrong code is refused; the third voids the request.
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
        decline,
        "Citizen: decline a request (the party is told APPROVAL_DECLINED).",
        """
          eid decline apr_0123456789abcdef01234567
        """,
    )
    p.add_argument("approval_id", metavar="APPROVAL_ID", help="from `eid approvals`")
    session_option(p)
    request_id_option(p)

    p = subcommand(
        sub,
        "claim",
        claim,
        "Citizen: take the request of a relying party's QR code as yours, to approve it.",
        """
          eid claim --image login.png
          eid claim eidapr1.4b0c...
        """,
    )
    scanned = p.add_mutually_exclusive_group(required=True)
    scanned.add_argument("token", nargs="?", help="the text of the party's QR code")
    scanned.add_argument("--image", metavar="FILE", help="a photo or screenshot of the QR code")
    session_option(p)
    request_id_option(p)


def _action_missing(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    raise UsageError("name an action: eid approval start ... or eid approval wait ID")


def start(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    require_api_key(client, "approval start")
    if (args.png or args.svg) and not args.qr:
        raise UsageError("--png and --svg draw the QR variant's code: add --qr (and drop --id)")
    response = client.start_approval(
        args.id or "",
        requested_scopes=args.scopes,
        message=args.message,
        request_id=args.request_id,
    )
    rows = show.started_rows(response, args.id or "")
    for kind, path in (("png", args.png), ("svg", args.svg)):
        if path:
            # Drawn here, not by the server: no image crosses the network.
            qr.write_image(response.qr_token, Path(path), kind)
            rows.append(("QR image", path))
    if out.as_json:
        out.json(response)
    else:
        if args.qr:
            qr.make(response.qr_token).terminal(out=sys.stdout, compact=True)
        out.table("Approval request", rows)
        if args.qr:
            out.raw(response.qr_token)
        out.hint(f"Show the citizen the code {response.verification_code} beside your prompt;")
        out.hint("their eid app shows the same code with your request.")
    if not args.wait:
        out.hint(f"Next: eid approval wait {response.approval_id}")
        return 0
    return _wait(response.approval_id, args, client, out, request_id=None)


def wait(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    require_api_key(client, "approval wait")
    return _wait(args.approval_id, args, client, out, request_id=args.request_id)


def _wait(
    approval_id: str,
    args: argparse.Namespace,
    client: EidClient,
    out: Output,
    *,
    request_id: str | None,
) -> int:
    out.hint("Waiting for the citizen's decision...")
    try:
        response = client.wait_for_approval(
            approval_id, within=args.within, requested_scopes=args.scopes, request_id=request_id
        )
    except EidError as e:
        advice = show.ADVICE.get(e.reason or "")
        if advice is None:
            raise
        out.eid_error(e)
        out.hint(advice)
        return 1
    print_verification(response, out)
    return 0


def approvals(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    token = session_of(args, "approvals")
    if args.all:
        found = list(client.iter_approval_requests(args.page_size, session_token=token))
        page = pb.ListApprovalRequestsResponse(approval_requests=found)
    else:
        page = client.list_approval_requests(args.page_size, args.page_token, token)
    if out.as_json:
        out.json(page)
        return 0
    if not page.approval_requests:
        out.raw("No approval requests waiting.")
    else:
        cells = [show.pending_cells(r) for r in page.approval_requests]
        caption = f"newest first; times in {_output.local_zone()}"
        out.grid("Approval requests", show.pending_columns, cells, caption)
        out.hint("Approve only what you started: the party's screen must show the same code.")
        out.hint("  eid approve <APPROVAL_ID> --code <CODE>    eid decline <APPROVAL_ID>")
    if page.next_page_token:
        out.hint(f"More (or --all): eid approvals --page-token {page.next_page_token}")
    return 0


def approve(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    token = session_of(args, "approve")
    response = client.approve(
        args.approval_id, args.code, request_id=args.request_id, session_token=token
    )
    out.result(response, "Approved", show.request_rows(response.approval_request))
    return 0


def decline(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    token = session_of(args, "decline")
    response = client.decline(args.approval_id, request_id=args.request_id, session_token=token)
    out.result(response, "Declined", show.request_rows(response.approval_request))
    return 0


def claim(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    session = session_of(args, "claim")
    scanned = args.token or _read_image(Path(args.image))
    response = client.claim_approval(scanned, request_id=args.request_id, session_token=session)
    request = response.approval_request
    out.result(response, "Approval request", show.request_rows(request))
    out.hint(f"If the party shows {request.verification_code}:")
    out.hint(f"  eid approve {request.approval_id} --code {request.verification_code}")
    out.hint(f"Otherwise: eid decline {request.approval_id}")
    return 0


def _read_image(path: Path) -> str:
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        payloads = qr.read_payloads(path)
    except qr.QrImageError as e:
        raise UsageError(str(e)) from e
    if len(payloads) != 1:
        raise UsageError(f"{path}: {len(payloads)} QR codes found; the image must show one")
    return payloads[0]
