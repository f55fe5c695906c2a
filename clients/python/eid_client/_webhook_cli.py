"""``eid webhook`` (a relying party's status webhook: show, set, remove) and
``eid verify-event`` (check a status event your webhook received, as your
receiver should: with the published keys and no call to eid but for them)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from pathlib import Path

from eid.v1 import identity_service_pb2 as pb
from eid_client._cli_common import Subparsers, request_id_option, subcommand
from eid_client._commands import UsageError, require_api_key
from eid_client._output import Output, Rows
from eid_client.client import EidClient
from eid_client.keys_cache import read_keys_file
from eid_client.status_events import (
    DEFAULT_TOLERANCE,
    SIGNATURE_HEADER,
    StatusEvent,
    StatusEventVerificationError,
    verify_status_event,
)

_EVENTS = """
    Status events tell a relying party that a citizen it has verified was locked
    (account.locked), unlocked (account.unlocked) or deactivated
    (account.deactivated): a JSON POST naming the citizen by your pairwise
    subject (the `subject` of your Verify answers), signed with the keys of
    `eid keys` (header X-Eid-Signature), retried until your webhook answers 2xx.
    Your own webhook must be https on a public host; an operator can set another
    (eid-server party webhook).
"""


def add_commands(sub: Subparsers) -> None:
    p = subcommand(
        sub,
        "webhook",
        webhook,
        "Relying party: show, set (--url) or remove (--clear) your status webhook.",
        """
          eid --api-key $KEY webhook --url https://bank.example/eid/events
          eid --api-key $KEY webhook              # where events go now
          eid --api-key $KEY webhook --clear      # no more events
        """,
        details=_EVENTS,
    )
    change = p.add_mutually_exclusive_group()
    change.add_argument("--url", help="the https URL to POST status events to")
    change.add_argument("--clear", action="store_true", help="stop sending status events")
    request_id_option(p)

    p = subcommand(
        sub,
        "verify-event",
        verify_event,
        "Check a status event your webhook received, with the published keys.",
        """
          eid verify-event body.json --signature "$SIG" --audience rp_7b2b3ca8aeb00826
          eid verify-event - --signature "$SIG" --keys keys.json < body.json
          eid --json verify-event body.json --signature "$SIG" --max-age 86400
        """,
        details=_EVENTS
        + """
    Pass the exact bytes received as the body and the X-Eid-Signature header's
    value. An event signed more than --max-age seconds ago (default 300) is
    refused as EVENT_STALE: a replay, unless you are checking an old capture.
""",
    )
    p.add_argument("body", metavar="BODY", help="file holding the request body, or - for stdin")
    p.add_argument(
        "--signature", required=True, metavar="SIG", help=f"the {SIGNATURE_HEADER} header's value"
    )
    p.add_argument("--keys", metavar="FILE", help="keys from `eid keys --out` (else fetched)")
    p.add_argument("--audience", metavar="PARTY_ID", help="refuse events meant for another party")
    p.add_argument("--issuer", metavar="ISS", help="refuse events from another issuer")
    p.add_argument(
        "--max-age",
        type=int,
        default=int(DEFAULT_TOLERANCE.total_seconds()),
        metavar="SECONDS",
        help="how far the signing time may be from now (default 300)",
    )


def _rows(hook: pb.StatusWebhook | None) -> Rows:
    if hook is None:
        return [("Status webhook", "none: set one with --url")]
    at = hook.update_time.ToDatetime().isoformat(timespec="seconds") + "Z"
    return [("Status webhook", hook.url), ("Set", at)]


def webhook(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    require_api_key(client, "webhook")
    if args.clear:
        client.clear_status_webhook(request_id=args.request_id)
        hook = None
    elif args.url is not None:
        hook = client.set_status_webhook(args.url, request_id=args.request_id)
    else:
        hook = client.status_webhook()
    message = pb.GetStatusWebhookResponse(webhook=hook)
    out.result(message, "Status events", _rows(hook))
    return 0


def _body(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(name).read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{name}: no such file") from None


def verify_event(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    body = _body(args.body)
    if args.keys:
        try:
            keys = read_keys_file(Path(args.keys))
        except FileNotFoundError:
            raise UsageError(f"--keys {args.keys}: no such file") from None
        except ValueError as e:
            raise UsageError(str(e)) from None
    else:
        keys = client.verification_keys()
    try:
        event = verify_status_event(
            body,
            {SIGNATURE_HEADER: args.signature},
            keys,
            audience=args.audience,
            issuer=args.issuer,
            tolerance=timedelta(seconds=args.max_age),
        )
    except StatusEventVerificationError as refused:
        out.error(f"error: {refused.reason}: {refused.message}")
        return 1
    if out.as_json:
        out.raw(json.dumps(event_json(event), indent=2))
    else:
        out.table("Status event", event_rows(event))
    return 0


def event_rows(event: StatusEvent) -> Rows:
    return [
        ("Event", "genuine"),
        ("Type", event.type),
        ("Subject", event.subject),
        ("Relying party", event.audience),
        ("When", event.time.isoformat()),
        ("Event ID", event.id),
        ("Issuer", event.issuer),
        ("Signed", event.signed_at.isoformat()),
        ("Signed by key", event.key_id),
    ]


def event_json(event: StatusEvent) -> dict[str, object]:
    return {
        "genuine": True,
        "id": event.id,
        "type": event.type,
        "subject": event.subject,
        "audience": event.audience,
        "issuer": event.issuer,
        "time": event.time.isoformat(),
        "signed_time": event.signed_at.isoformat(),
        "key_id": event.key_id,
    }
