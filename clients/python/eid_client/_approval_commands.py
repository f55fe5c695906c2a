"""What the approval subcommands of ``eid`` do (declared in _approval_cli.py):
the party starts a request and waits for its outcome; the citizen lists,
claims, approves and declines requests."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from eid.v1 import identity_service_pb2 as pb
from eid_client import _approval_output as show
from eid_client import _output, qr
from eid_client._commands import UsageError, require_api_key, session_of
from eid_client._output import Output
from eid_client._verify_output import print_verification
from eid_client.client import EidClient
from eid_client.errors import EidError


def action_missing(args: argparse.Namespace, client: EidClient, out: Output) -> int:
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
        out.hint(f"Next: eid approval wait {_output.shell_word(response.approval_id)}")
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
        next_page = _output.shell_word(page.next_page_token)
        out.hint(f"More (or --all): eid approvals --page-token {next_page}")
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
    approval_id = _output.shell_word(request.approval_id)
    out.hint(f"  eid approve {approval_id} --code {_output.shell_word(request.verification_code)}")
    out.hint(f"Otherwise: eid decline {approval_id}")
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
