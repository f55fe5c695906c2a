"""``eid verify-receipt``: check a verification receipt offline and print its claims.

The keys come from the same places as verify-offline's (see _verify_commands.py
and keys_cache.py): ``--keys FILE``, else the cache of ``--target``'s keys,
fetched when missing, when asked (``--refresh-keys``) or, once, when the
receipt names a key the cache lacks. A receipt refused whatever the keys
(damaged, too large) fetches nothing.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path

import grpc

from eid_client._cli_common import Subparsers, subcommand
from eid_client._commands import UsageError
from eid_client._output import Output, Rows
from eid_client.client import EidClient
from eid_client.errors import EidError
from eid_client.keys_cache import KeyCache, read_keys_file
from eid_client.offline import KeySet
from eid_client.receipts import ReceiptClaims, ReceiptVerificationError, verify_receipt


def add_commands(sub: Subparsers) -> None:
    p = subcommand(
        sub,
        "verify-receipt",
        verify_receipt_command,
        "Check a Verify's signed receipt with the published keys and no call to eid.",
        """
          eid --api-key $KEY --json verify --id 001190791514 | jq -r .receipt > receipt.jws
          eid verify-receipt "$(cat receipt.jws)" --audience rp_7b2b3ca8aeb00826 --issuer eid.vn
          eid verify-receipt eyJhbGciOiJFZERTQSIsImtpZCI6Ims3cW14MiIs... --keys keys.json
          eid --json verify-receipt - < receipt.jws | jq -r .result
        """,
        details="""
            A receipt is what a relying party keeps as evidence of a verification: who
            verified whom (the citizen's pairwise subject for that party), when, how,
            which attributes were released and the result, signed by eid (a JWS, EdDSA).
            It never expires. Exit status 0 when the receipt is genuine, whatever its
            result; 1 with the reason (RECEIPT_SIGNATURE_INVALID, RECEIPT_KEY_REVOKED,
            ...) when it is refused. The keys come from --keys, else from the cache of
            --target's keys, fetched once (and again, once, when the receipt names a key
            the cache lacks). Keep the keys of receipts you archive (`eid keys --out`):
            a retired key stops being published some time after its retirement.
        """,
    )
    p.add_argument(
        "receipt",
        metavar="RECEIPT",
        help="the receipt (compact JWS, three parts separated by dots), or - to read stdin",
    )
    p.add_argument(
        "--keys",
        metavar="FILE",
        help="verify with the keys in FILE (from `eid keys --out`, or a JWKS document) "
        "and ask no server",
    )
    p.add_argument("--issuer", metavar="ISS", help="refuse receipts not issued by ISS, e.g. eid.vn")
    p.add_argument(
        "--audience",
        metavar="PARTY_ID",
        help="your relying-party id: refuse receipts issued to another party",
    )
    p.add_argument(
        "--refresh-keys",
        action="store_true",
        help="fetch the keys again before verifying (not with --keys)",
    )


def verify_receipt_command(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    receipt: str = args.receipt
    if receipt == "-":
        receipt = sys.stdin.read().strip()
    if not receipt:
        raise UsageError("no receipt: pass it as an argument or `-` to read it from stdin")
    try:
        claims = _check(receipt, args, client, out)
    except ReceiptVerificationError as refused:
        out.error(f"error: {refused.reason}: {refused.message}")
        for line in _advice(refused.reason, args):
            out.hint(line)
        return 1
    kid = _key_id(receipt)
    if out.as_json:
        out.raw(json.dumps(receipt_json(claims, kid), indent=2, ensure_ascii=False))
    else:
        out.table("Verification receipt", receipt_rows(claims, kid))
    return 0


def _check(token: str, args: argparse.Namespace, client: EidClient, out: Output) -> ReceiptClaims:
    def check(keys: KeySet) -> ReceiptClaims:
        return verify_receipt(token, keys, issuer=args.issuer, audience=args.audience)

    if args.keys:
        path = Path(args.keys)
        try:
            given = read_keys_file(path)
        except FileNotFoundError:
            raise UsageError(f"--keys {path}: no such file") from None
        except ValueError as e:
            raise UsageError(str(e)) from None
        return check(given)

    try:  # with no keys at all, only a well-formed receipt fails on its key
        check(KeySet([]))
    except ReceiptVerificationError as refused:
        if refused.reason != "RECEIPT_KEY_UNKNOWN":
            raise
    cache = KeyCache.for_target(args.target)
    keys = None if args.refresh_keys else cache.load()
    if keys is not None:
        try:
            return check(keys)
        except ReceiptVerificationError as refused:
            if refused.reason != "RECEIPT_KEY_UNKNOWN":
                raise
    try:
        keys = client.verification_keys()
    except EidError as e:
        if e.code == grpc.StatusCode.UNAVAILABLE:
            out.hint("No keys to verify with: pass --keys FILE (from `eid keys --out FILE`),")
            out.hint("or reach the server to fetch them once.")
        raise
    out.hint(f"Fetched the verification keys from {args.target} (cache: {cache.path}).")
    cache.keep(keys)
    return check(keys)


def _key_id(token: str) -> str:
    """The kid of a receipt that verified (so its header is ours)."""
    header = token.split(".", 1)[0]
    kid: str = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
    return kid


def _result(claims: ReceiptClaims) -> str:
    if claims.verified:
        return "verified"
    return f"not verified ({claims.reason})" if claims.reason else "not verified"


def receipt_rows(claims: ReceiptClaims, key_id: str) -> Rows:
    return [
        ("Receipt", "genuine, checked offline (no call to eid)"),
        ("Result", _result(claims)),
        ("Issuer", claims.issuer),
        ("Relying party", claims.audience),
        ("Subject", claims.subject),
        ("Verification ID", claims.verification_id),
        ("Mode", claims.mode),
        ("Level", claims.level or "-"),
        ("Attributes released", ", ".join(claims.attributes) or "none"),
        ("Issued", claims.issued_at.astimezone().isoformat(timespec="seconds")),
        ("Signed by key", key_id),
    ]


def receipt_json(claims: ReceiptClaims, key_id: str) -> dict[str, object]:
    """The JSON of `eid --json verify-receipt`."""
    return {
        "genuine": True,
        "result": "verified" if claims.verified else "not_verified",
        "reason": claims.reason or None,
        "issuer": claims.issuer,
        "audience": claims.audience,
        "subject": claims.subject,
        "verification_id": claims.verification_id,
        "mode": claims.mode,
        "level": claims.level,
        "attributes": list(claims.attributes),
        "issue_time": claims.issued_at.isoformat(),
        "key_id": key_id,
    }


def _advice(reason: str, args: argparse.Namespace) -> list[str]:
    """What the person holding the receipt can do about a refusal."""
    if reason == "RECEIPT_KEY_UNKNOWN":
        if args.keys:
            return ["The keys file lacks this key (rotated since?): eid keys --refresh --out FILE"]
        return [
            f"The server at {args.target} does not publish this key (any more?).",
            "Verify an archived receipt with the keys kept when it was issued: --keys FILE.",
        ]
    if reason == "RECEIPT_KEY_REVOKED":
        return ["Its signing key was revoked (compromised): this receipt proves nothing."]
    if reason in ("RECEIPT_SIGNATURE_INVALID", "RECEIPT_ISSUED_AFTER_KEY_RETIRED"):
        return ["Altered, or not signed by eid: do not rely on it."]
    if reason == "RECEIPT_AUDIENCE_MISMATCH":
        return ["The receipt was issued to another relying party."]
    if reason == "RECEIPT_MALFORMED":
        return ["Pass the whole receipt: three base64url parts separated by dots."]
    return []
