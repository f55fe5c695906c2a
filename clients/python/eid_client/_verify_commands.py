"""What the verifier's offline subcommands do: keys, verify-qr and verify-offline.

Offline verification sends nothing: the keys come from ``--keys FILE`` or from
the cache of ``--target``'s keys (see keys_cache.py), which is fetched only when
missing, when asked (``--refresh-keys``) or, once, when a payload names a key
the cache does not hold. Refusals print the codec's reason and message, which
hold no personal data.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import grpc

from eid_client import _share_output as show
from eid_client import qr
from eid_client._commands import UsageError
from eid_client._output import Output, shell_word
from eid_client.client import EidClient
from eid_client.errors import EidError
from eid_client.keys_cache import (
    KeyCache,
    OfflineChecks,
    key_set_from_response,
    read_keys_file,
    verify_with_cache,
    write_keys_file,
)
from eid_client.offline import KeySet, OfflineCredential, OfflineVerificationError

# An online share token: "eid<version>." and base64url parts separated by dots.
_TOKEN = re.compile(r"eid[0-9]+\.[A-Za-z0-9_.-]+", re.ASCII)


def keys(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    cache = KeyCache.for_target(args.target)
    cached = None if args.refresh else cache.load()
    if cached is None:
        response = client.get_verification_keys()
        found = key_set_from_response(response)
        if not cache.keep(found):
            out.error(f"warning: cannot write the cache {cache.path}; the keys are not kept")
        views = [show.KeyView.listed(k) for k in response.keys]
        source = (
            f"fetched from {args.target}, issuer {response.issuer or '-'}; cached in {cache.path}"
        )
    else:
        found = cached
        views = [show.KeyView.cached(k) for k in cached.values()]
        source = f"from the cache {cache.path} (--refresh fetches them again)"
    if args.out:
        _write(Path(args.out), found, jwks=args.jwks, out=out)
    if args.jwks and not args.out:
        out.raw(found.to_jwks())
    elif out.as_json:
        document = {"source": source, "keys": [v.as_json() for v in views]}
        out.raw(json.dumps(document, indent=2))
    else:
        out.grid("Verification keys", show.key_columns, [v.cells() for v in views], source)
    return 0


def _write(path: Path, found: KeySet, *, jwks: bool, out: Output) -> None:
    try:
        write_keys_file(path, found, jwks=jwks)
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror or e.__class__.__name__}") from e
    if jwks:
        out.hint(f"Wrote {path} (JWKS). A JWKS document cannot mark keys retired or revoked;")
        out.hint("the default format can: prefer it for `eid verify-qr --keys`.")
    else:
        keys_file = shell_word(str(path))
        out.hint(f"Wrote {path}. Verify with no server: eid verify-qr IMAGE --keys {keys_file}")


def verify_qr(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    image = Path(args.image)
    if not image.is_file():
        raise UsageError(f"{image}: no such file")
    try:
        payloads = qr.read_payloads(image)
    except qr.QrImageError as e:
        out.error(f"error: {e}")
        return 1
    if len(payloads) != 1:
        found = "no QR code" if not payloads else f"{len(payloads)} QR codes"
        out.error(f"error: {image}: {found} found; the image must show one share's QR code")
        return 1
    return _verify(payloads[0], args, client, out)


def verify_offline(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    payload: str = args.payload
    if payload == "-":
        # Base45 has a space among its characters: only the line end is removed.
        payload = sys.stdin.readline().rstrip("\r\n")
    if not payload:
        raise UsageError("no payload: pass it as an argument or `-` to read a line from stdin")
    return _verify(payload, args, client, out)


def _verify(payload: str, args: argparse.Namespace, client: EidClient, out: Output) -> int:
    checks = OfflineChecks(audience=args.audience or None)
    try:
        credential = _check(payload, checks, args, client, out)
    except OfflineVerificationError as refused:
        out.error(f"error: {refused.reason}: {refused.message}")
        for line in _advice(refused.reason, payload, args):
            out.hint(line)
        return 1
    if out.as_json:
        out.raw(json.dumps(show.credential_json(credential), indent=2, ensure_ascii=False))
    else:
        out.table("Offline share", show.credential_rows(credential))
    return 0


def _check(
    payload: str, checks: OfflineChecks, args: argparse.Namespace, client: EidClient, out: Output
) -> OfflineCredential:
    if args.keys:
        path = Path(args.keys)
        try:
            given = read_keys_file(path)
        except FileNotFoundError:
            raise UsageError(f"--keys {path}: no such file") from None
        except ValueError as e:
            raise UsageError(str(e)) from None
        return checks.verify(payload, given)

    cache = KeyCache.for_target(args.target)

    def fetch() -> KeySet:
        try:
            fetched = client.verification_keys()
        except EidError as e:
            if e.code == grpc.StatusCode.UNAVAILABLE:
                out.hint("No keys to verify with: pass --keys FILE (from `eid keys --out FILE`),")
                out.hint("or reach the server to fetch them once.")
            raise
        out.hint(f"Fetched the verification keys from {args.target} (cache: {cache.path}).")
        return fetched

    return verify_with_cache(payload, cache, fetch, checks=checks, refresh=args.refresh_keys)


def _advice(reason: str, payload: str, args: argparse.Namespace) -> list[str]:
    """What the person at the desk can do about a refusal."""
    if reason == "SHARE_ONLINE_ONLY":
        # A command to paste into a shell: a forged code's quotes or terminal
        # controls must not reach it, so only a token's own characters are shown.
        token = f"'{payload}'" if _TOKEN.fullmatch(payload) else "TOKEN"
        return [
            "This is an ONLINE share: its QR code holds a reference, not the attributes.",
            "A relying party redeems it online with its API key:",
            f"  eid --api-key $EID_API_KEY redeem {token}",
        ]
    if reason == "SHARE_KEY_UNKNOWN":
        if args.keys:
            return ["The keys file lacks this key (rotated since?): eid keys --refresh --out FILE"]
        return [f"The server at {args.target} does not publish this key either."]
    if reason == "SHARE_AUDIENCE_MISMATCH":
        if not args.audience:
            return ["The share is bound to one relying party: pass its id with --audience."]
        return ["The share is bound to another relying party."]
    if reason in ("SHARE_EXPIRED", "SHARE_NOT_YET_VALID"):
        return ["Offline shares live minutes: ask for a new one. Check this computer's clock."]
    if reason == "SHARE_KEY_REVOKED":
        return ["Its signing key was revoked (compromised): do not accept this share."]
    return []
