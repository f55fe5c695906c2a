"""The QR-share subcommands of ``eid``: the citizen's share, shares and
revoke-share (handlers in _share_commands.py) and the verifier's verify-qr,
verify-offline and keys (handlers in _verify_commands.py)."""

from __future__ import annotations

import argparse

from eid_client import _share_commands as commands
from eid_client import _verify_commands as verify
from eid_client._cli_common import (
    Subparsers,
    dependant_option,
    password_option,
    request_id_option,
    session_option,
    subcommand,
)
from eid_client.cli_args import positive_int


def add_citizen_commands(sub: Subparsers) -> None:
    p = subcommand(
        sub,
        "share",
        commands.share,
        "Citizen: share chosen attributes as a signed, expiring QR code.",
        """
          eid share --id 001190791514 --attributes full_name,birth_date
          eid share --session $EID_SESSION --audience rp_7b2b3ca8aeb00826 --ttl 120 --png share.png
          eid share --offline --attributes personal_id,full_name,birth_date,gender --png share.png
          eid share --multi-use --ttl 3600 --svg share.svg
        """,
        details="""
            ONLINE (the default): the QR code holds a signed reference and no personal
            data; a relying party redeems it with `eid redeem`, once unless --multi-use.
            OFFLINE (--offline): the QR code holds the chosen attributes, signed, for
            anyone who scans it to check without asking eid (`eid verify-qr`); it can be
            redeemed online too. The image is drawn here, at error-correction level M.
        """,
    )
    who = p.add_mutually_exclusive_group()
    who.add_argument("--id", help="sign in with this personal ID number first")
    session_option(who)
    password_option(p, "the account password, with --id")
    p.add_argument(
        "--attributes",
        default="full_name,birth_date,gender",
        help="comma-separated: personal_id, full_name, birth_date, gender, phone_number, "
        "email, nationality (a foreigner's), and online only your linked driving_licence, "
        "vehicle_registration, health_insurance, social_insurance, tax_code "
        "(default full_name,birth_date,gender)",
    )
    p.add_argument("--audience", default="", metavar="PARTY_ID", help="only this party may redeem")
    dependant_option(p, "sharing a dependant's attributes")
    p.add_argument(
        "--ttl",
        type=int,
        metavar="SECONDS",
        help="validity from 30 seconds to the server's cap (EID_SHARE_MAX_TTL_SECONDS, "
        "at most 86400); default 300",
    )
    p.add_argument(
        "--offline",
        action="store_true",
        help="put the attributes themselves in the QR code, signed, for offline checks",
    )
    p.add_argument(
        "--multi-use",
        action="store_true",
        help="let parties redeem it online until it expires, not only once",
    )
    p.add_argument(
        "--png",
        "--qr-out",
        dest="png",
        metavar="FILE.png",
        help="write the QR code to this PNG file",
    )
    p.add_argument("--svg", metavar="FILE.svg", help="write the QR code to this SVG file")
    p.add_argument("--no-qr", action="store_true", help="do not draw the QR code in the terminal")
    request_id_option(p)

    p = subcommand(
        sub,
        "shares",
        commands.shares,
        "List your QR shares, newest first: mode, state, attributes, audience, redemptions.",
        """
          eid shares                                # the session in EID_SESSION
          eid --json shares | jq -r '.shares[] | select(.state == "SHARE_STATE_ACTIVE") | .share_id'
          eid shares --dependant acc_4a1f0c2e9b7d4e6f8a3c5b1d2e   # made for your child
        """,
    )
    session_option(p)
    dependant_option(p, "listing the shares made for a dependant")
    p.add_argument(
        "--page-size",
        type=positive_int,
        default=0,
        metavar="N",
        help="shares per call, at most 100 (default: the server's, 20); all pages are shown",
    )

    p = subcommand(
        sub,
        "revoke-share",
        commands.revoke_share,
        "Withdraw one of your QR shares (IDs from `eid share` or `eid shares`).",
        """
          eid revoke-share shr_c18b4fc52ffde32ec4f6622867878adf
          eid revoke-share shr_c18b4fc52ffde32ec4f6622867878adf \\
              --dependant acc_4a1f0c2e9b7d4e6f8a3c5b1d2e   # one made for your child
        """,
        details="""
            Redeeming it online fails at once with SHARE_REVOKED. An OFFLINE share's QR
            code still checks offline until it expires: an offline verifier cannot learn
            of the revocation, which is why offline shares live minutes, not days.
        """,
    )
    p.add_argument("share_id", metavar="SHARE_ID", help="the share to withdraw")
    session_option(p)
    dependant_option(p, "withdrawing a share made for a dependant")
    request_id_option(p)


def _offline_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--keys",
        metavar="FILE",
        help="verify with the keys in FILE (from `eid keys --out`, or a JWKS document) "
        "and ask no server",
    )
    p.add_argument(
        "--audience",
        metavar="PARTY_ID",
        default="",
        help="your relying-party id: needed to accept a share bound to one party",
    )
    p.add_argument(
        "--refresh-keys",
        action="store_true",
        help="fetch the keys again before verifying (not with --keys)",
    )


def add_verifier_commands(sub: Subparsers) -> None:
    p = subcommand(
        sub,
        "verify-qr",
        verify.verify_qr,
        "Check an OFFLINE share's QR image with no call to eid; print its attributes.",
        """
          eid verify-qr share.png                       # keys cached from --target
          eid verify-qr share.png --keys keys.json      # no server at all
          eid verify-qr photo.jpg --audience rp_7b2b3ca8aeb00826 --json
        """,
        details="""
            The image (PNG, JPEG, ...) is decoded with zxing-cpp and the payload checked
            with the issuer's public keys: the signature, the key's state, expiry (60
            seconds of clock skew allowed) and the audience. The keys come from --keys,
            else from the cache of --target's keys, fetched once (and again, once, when
            a payload names a key the cache lacks). Exit status 1 with the reason when
            the share is refused. An ONLINE share's QR code holds no attributes: redeem
            it with `eid redeem`.
        """,
    )
    p.add_argument("image", metavar="IMAGE", help="a photo or image file of the QR code")
    _offline_options(p)

    p = subcommand(
        sub,
        "verify-offline",
        verify.verify_offline,
        "Check an OFFLINE share's payload text with no call to eid (as verify-qr).",
        """
          eid verify-offline 'NCFOXN%TS3DH3ZSUZK+.V0ETD%65NL-AH8R7A4...' --keys keys.json
          scanner-app | eid verify-offline - --json
        """,
    )
    p.add_argument(
        "payload",
        metavar="PAYLOAD",
        help="the text of the QR code (quote it: Base45 has spaces), or - to read a line of stdin",
    )
    _offline_options(p)

    p = subcommand(
        sub,
        "keys",
        verify.keys,
        "Show the keys that verify offline shares; cache them or write them to a file.",
        """
          eid keys                         # from the cache, fetched once from --target
          eid keys --refresh --out keys.json
          eid keys --jwks > jwks.json
        """,
        details="""
            The keys are published by the server without authentication: the current
            signing key, retired keys while what they signed may still be valid, and
            revoked keys. They are cached per server in $XDG_CACHE_HOME/eid (else
            ~/.cache/eid) for verify-qr and verify-offline. --out writes them to a file
            to carry to a verifier with no network: the default format keeps which keys
            are retired or revoked; --jwks writes a standard JWKS document (RFC 7517),
            which cannot.
        """,
    )
    p.add_argument("--refresh", action="store_true", help="fetch the keys again")
    p.add_argument("--out", metavar="FILE", help="also write the keys to FILE")
    p.add_argument(
        "--jwks",
        action="store_true",
        help="JWKS format: for --out, or printed instead of the table",
    )
