"""The relying party's online verification subcommands of ``eid``: request-otp,
verify (by password, one-time code or demographic claim) and redeem, each
declared beside what it does. All of them need the party's API key."""

from __future__ import annotations

import argparse

from eid_client import _verify_output as show
from eid_client._cli_common import (
    SHARE_EXAMPLE,
    Subparsers,
    id_option,
    password_option,
    request_id_option,
    subcommand,
)
from eid_client._commands import UsageError, password_of, require_api_key
from eid_client._output import Output, shell_word
from eid_client._verify_requests import MIN_NAME_THRESHOLD, SCOPES, parse_scopes
from eid_client.client import EidClient

_CLAIMS = ("name", "birth_date", "gender", "partial", "threshold")


def add_commands(sub: Subparsers) -> None:
    p = subcommand(
        sub,
        "request-otp",
        request_otp,
        "Relying party: text a citizen a one-time code to verify them with (needs --api-key).",
        """
          eid --api-key $KEY request-otp --id 001190791514
          eid --api-key $KEY verify --id 001190791514 --otp 123456   # the code they read out
        """,
        details="""
            A 6-digit code naming your party goes to the phone the citizen registered;
            they read it out or type it in, and `eid verify --id ... --otp CODE` checks
            it: once, and only for your party. The answer (when the code expires) is
            the same whether or not the ID number has an active account. By default at
            most once a minute per citizen for your party, and 10 codes a day per citizen.
        """,
    )
    id_option(p, "the citizen's 12-digit personal ID number")
    request_id_option(p)

    p = subcommand(
        sub,
        "verify",
        verify,
        "Relying party: verify a citizen by password, one-time code or demographic claim "
        "(needs --api-key).",
        """
          eid --api-key $KEY verify --id 001190791514                 # prompts for the password
          eid --api-key $KEY verify --id 001190791514 --otp 123456 --scopes basic
          eid --api-key $KEY verify --id 001190791514 --demographic \\
              --name "Nguyễn Thị Lan" --birth-date 1990-05-17 --gender female
          eid --api-key $KEY verify --id 001190791514 --demographic \\
              --name "nguyen lan thi" --partial --threshold 90 --birth-date 1990
          eid --api-key $KEY --json verify --id 001190791514 --otp 123456 \\
              | jq -r .receipt | eid verify-receipt -
        """,
        details="""
            By password (the default; for trusted internal services), by --otp CODE
            (the code `eid request-otp` sent the citizen), or by --demographic: is the
            claimed name, birth date (or birth year) and gender this citizen's? Claim
            --name or a full --birth-date: the gender and birth year alone are in the
            ID number itself, and are refused (DEMOGRAPHIC_CLAIM_TOO_WEAK). Each
            claim is answered MATCH or NO_MATCH, verified means every claim matched,
            and nothing is released. --scopes narrows what a password or code
            verification releases (basic: full name, birth date, gender, a foreigner's
            nationality; id_number: the personal ID number; documents.tax_code and
            the other documents.* scopes: the citizen's linked documents of that
            type); default: all your party may read. A verified citizen comes with
            their pairwise subject for your party and a signed receipt, printed last,
            to keep and to check offline: `eid verify-receipt`.
        """,
    )
    id_option(p, "the citizen's 12-digit personal ID number")
    password_option(p, "the citizen's password, in password mode")
    how = p.add_mutually_exclusive_group()
    how.add_argument(
        "--otp", metavar="CODE", help="verify with the 6-digit code from `eid request-otp`"
    )
    how.add_argument(
        "--demographic",
        action="store_true",
        help="verify claimed data: --name or a full --birth-date, and any of the others",
    )
    claim = p.add_argument_group("demographic claim (with --demographic)")
    claim.add_argument("--name", help="the claimed full name")
    claim.add_argument(
        "--birth-date",
        metavar="YYYY-MM-DD|YYYY",
        help="the claimed birth date, or the year only (beside --name)",
    )
    claim.add_argument("--gender", choices=["male", "female"], help="the claimed gender")
    claim.add_argument(
        "--partial",
        action="store_true",
        help="score the name 0-100, blind to diacritics, case and word order, "
        "instead of comparing it exactly",
    )
    claim.add_argument(
        "--threshold",
        type=_score,
        metavar="N",
        help="with --partial: the lowest score that matches, 80-100 (default 80)",
    )
    scopes_option(p)
    request_id_option(p)

    p = subcommand(
        sub,
        "redeem",
        redeem,
        "Relying party: redeem a scanned QR share token, once (needs --api-key).",
        f"""
          eid --api-key $KEY redeem {SHARE_EXAMPLE}
          eid --api-key $KEY redeem "$TOKEN" --scopes basic   # the token, read from the QR
        """,
    )
    p.add_argument("token", help="the token read from the citizen's QR code")
    scopes_option(p)
    request_id_option(p)


def scopes_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scopes",
        type=_scopes,
        default=[],
        metavar="SCOPE,...",
        help=f"ask only for these: {', '.join(SCOPES)} (default: all your party may read)",
    )


def _scopes(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    try:
        parse_scopes(names)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return names


def _score(text: str) -> int:
    if not text.isdigit() or not MIN_NAME_THRESHOLD <= int(text) <= 100:
        raise argparse.ArgumentTypeError(f"a score from {MIN_NAME_THRESHOLD} to 100, not {text!r}")
    return int(text)


def request_otp(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    require_api_key(client, "request-otp")
    response = client.request_otp(args.id, request_id=args.request_id)
    out.result(response, "One-time code", show.otp_rows(response))
    out.hint(f"Next: eid verify --id {shell_word(args.id)} --otp <the code the citizen reads out>")
    return 0


def verify(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    require_api_key(client, "verify")
    _check_mode(args)
    if args.demographic:
        response = client.verify_demographic(
            args.id,
            full_name=args.name,
            birth_date=args.birth_date,
            gender=args.gender,
            partial=args.partial,
            threshold=args.threshold,
            request_id=args.request_id,
        )
    elif args.otp:
        response = client.verify_one_time_code(
            args.id, args.otp, requested_scopes=args.scopes, request_id=args.request_id
        )
    else:
        response = client.verify_password(
            personal_id=args.id,
            password=password_of(args),
            requested_scopes=args.scopes,
            request_id=args.request_id,
        )
    show.print_verification(response, out)
    if args.otp and not response.verified:
        out.hint("A code works once, for the party that asked for it, until it expires;")
        out.hint(f"a new one: eid request-otp --id {shell_word(args.id)}")
    return 0


def _check_mode(args: argparse.Namespace) -> None:
    """One mode, with only its own options (argparse cannot group them so)."""
    if (args.otp or args.demographic) and (args.password or args.password_stdin):
        raise UsageError("a password goes with password mode, not with --otp or --demographic")
    claimed = [f"--{name.replace('_', '-')}" for name in _CLAIMS if getattr(args, name)]
    if not args.demographic:
        if claimed:
            raise UsageError(f"{', '.join(claimed)}: only with --demographic")
        return
    if args.scopes:
        raise UsageError("--demographic releases no attributes: --scopes does not apply")
    if not (args.name or args.birth_date or args.gender):
        raise UsageError("--demographic claims at least one of --name, --birth-date, --gender")
    if args.partial and not args.name:
        raise UsageError("--partial scores a claimed --name: pass one")
    if args.threshold is not None and not args.partial:
        raise UsageError("--threshold goes with --partial (an exact name has no score)")


def redeem(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    require_api_key(client, "redeem")
    response = client.redeem_share(
        args.token, request_id=args.request_id, requested_scopes=args.scopes
    )
    show.print_verification(response, out)
    return 0
