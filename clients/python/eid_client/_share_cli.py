"""The QR-share subcommands of ``eid``: the citizen's share, shares and
revoke-share (handlers in _share_commands.py)."""

from __future__ import annotations

from eid_client import _share_commands as commands
from eid_client._cli_common import (
    Subparsers,
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
          eid share --session $EID_SESSION --audience rp_0123456789abcdef --ttl 120 --png share.png
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
        help="comma-separated: personal_id, full_name, birth_date, gender "
        "(default full_name,birth_date,gender)",
    )
    p.add_argument("--audience", default="", metavar="PARTY_ID", help="only this party may redeem")
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
        """,
    )
    session_option(p)
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
          eid revoke-share shr_0123456789abcdef0123456789abcdef
        """,
        details="""
            Redeeming it online fails at once with SHARE_REVOKED. An OFFLINE share's QR
            code still checks offline until it expires: an offline verifier cannot learn
            of the revocation, which is why offline shares live minutes, not days.
        """,
    )
    p.add_argument("share_id", metavar="SHARE_ID", help="the share to withdraw")
    session_option(p)
    request_id_option(p)
