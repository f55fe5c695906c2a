"""What the citizen's share subcommands do: share, shares and revoke-share."""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

from eid.v1 import identity_service_pb2 as pb
from eid_client import _output, _requests, qr
from eid_client import _share_output as show
from eid_client._commands import UsageError, password_of, session_of
from eid_client._output import Output
from eid_client.client import EidClient


def _citizen_session(args: argparse.Namespace, client: EidClient) -> str:
    # --id wins over a session inherited from $EID_SESSION.
    if args.id:
        password = password_of(args)
        return client.sign_in(personal_id=args.id, password=password).session_token
    if args.session:
        session: str = args.session
        return session
    raise UsageError("share needs a citizen: pass --id (and a password) or --session")


def _images(args: argparse.Namespace) -> list[tuple[str, Path]]:
    return [(kind, Path(path)) for kind, path in (("png", args.png), ("svg", args.svg)) if path]


def share(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    try:
        attributes = [_requests.parse_attribute(a) for a in args.attributes.split(",") if a.strip()]
    except ValueError as e:
        raise UsageError(str(e)) from e
    session = _citizen_session(args, client)
    ttl = datetime.timedelta(seconds=args.ttl) if args.ttl is not None else None
    response = client.share_via_qr(
        attributes=attributes,
        audience_party_id=args.audience,
        ttl=ttl,
        request_id=args.request_id,
        session_token=session,
        mode="offline" if args.offline else "online",
        multi_use=args.multi_use,
        dependant_account_id=args.dependant,
    )
    # Drawn here, not by the server: no image crosses the network.
    written: list[Path] = []
    failed = False
    for kind, path in _images(args):
        try:
            qr.write_image(response.token, path, kind)
        except OSError as e:
            # The share exists all the same: report, and still print it below.
            out.error(f"error: cannot write {path}: {e.strerror or e.__class__.__name__}")
            failed = True
        else:
            written.append(path)
    if out.as_json:
        out.json(response)
        return 1 if failed else 0
    if not args.no_qr:
        _print_terminal_qr(response.token)
    rows = [
        ("Share ID", response.share_id),
        ("Mode", show.mode(response.mode)),
        ("Use", show.use(args.multi_use)),
        ("Attributes", show.attributes(attributes)),
        ("Audience", args.audience or "any approved party"),
        ("Expires", _output.when(response.expire_time)),
        ("Signed by key", response.key_id or "-"),
    ]
    rows.extend(("QR image", str(path)) for path in written)
    out.table("Share", rows)
    out.raw(response.token)
    if response.mode == pb.SHARE_MODE_OFFLINE:
        out.hint("Whoever reads this QR code reads these attributes, without asking eid;")
        out.hint("check it with `eid verify-qr IMAGE`. Revoking it stops online redemption only.")
    return 1 if failed else 0


def _print_terminal_qr(token: str) -> None:
    # Never a Micro QR code, which phone scanners often cannot read.
    qr.make(token).terminal(out=sys.stdout, compact=True)


def shares(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    token = session_of(args, "shares")
    found = list(
        client.iter_shares(
            page_size=args.page_size, session_token=token, dependant_account_id=args.dependant
        )
    )
    if out.as_json:
        out.json(pb.ListSharesResponse(shares=found))
        return 0
    if not found:
        out.raw("No shares.")
        return 0
    out.grid(
        "Shares",
        show.share_columns,
        [show.share_cells(s) for s in found],
        caption=f"newest first; times in {_output.local_zone()}",
    )
    dependant = f" --dependant {_output.shell_word(args.dependant)}" if args.dependant else ""
    out.hint(f"Withdraw one with: eid revoke-share <Share ID>{dependant}")
    return 0


def revoke_share(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    token = session_of(args, "revoke-share")
    response = client.revoke_share(
        args.share_id,
        request_id=args.request_id,
        session_token=token,
        dependant_account_id=args.dependant,
    )
    shared = response.share
    out.result(response, "Share", show.share_rows(shared))
    if shared.state != pb.SHARE_STATE_REVOKED:
        out.hint(f"It was {show.share_state(shared.state)} already: nothing changed.")
    elif shared.mode == pb.SHARE_MODE_OFFLINE:
        out.hint("Online redemption now fails. An offline verifier cannot learn of this:")
        out.hint(f"the QR code still checks offline until {_output.when(shared.expire_time)}.")
    else:
        out.hint("Redeeming it now fails with SHARE_REVOKED.")
    return 0
