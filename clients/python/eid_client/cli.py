"""The ``eid`` command line: register, activate, sign in, verify and share with eid,
and the account's life (codes, sessions, lock and unlock; see _account_cli.py)."""

from __future__ import annotations

import argparse

import grpc

from eid_client import (
    _account_cli,
    _approval_cli,
    _commands,
    _dependant_cli,
    _document_cli,
    _history_cli,
    _mode_lock_cli,
    _receipt_cli,
    _share_cli,
    _verify_cli,
    _webhook_cli,
)
from eid_client._cli_common import (
    SHARE_EXAMPLE,
    Handler,
    global_options,
    id_option,
    password_option,
    request_id_option,
    subcommand,
)
from eid_client._output import Output
from eid_client.cli_args import tls_from_args
from eid_client.client import EidClient
from eid_client.errors import EidError
from eid_client.retry import RetryPolicy

_DESCRIPTION = """\
Command-line client for eid, the electronic-identity service.

Citizens register, activate, sign in and share data by QR code (online or
offline), list and revoke their shares, list and end their sessions, read who
verified them (history), lock or unlock their account or single Verify modes
(modes, lock-mode, unlock-mode); relying parties
(banks, telcos, ...) verify a citizen with their API key by password, by a
one-time code texted to the citizen, by a demographic claim, by redeeming a
scanned QR share or by the citizen's approval on their phone (approval start,
approval wait; the citizen's approvals, approve, decline, claim), and get a
signed receipt; anyone checks an offline share's QR image or a verification
receipt with the published keys and no call to eid;
registration officers unlock accounts. Passwords are read from --password or
--password-stdin, else $EID_PASSWORD, else prompted for (never echoed, never
printed).
"""

_EPILOG = f"""\
examples:
  eid register --id 001190791514 --name "Nguyễn Thị Lan" --birth-date 1990-05-17 \\
      --gender female --phone 0912345678 --portrait face.f32
  eid activate --id 001190791514 --code 123456
  export EID_SESSION=$(eid signin --id 001190791514)
  eid share --attributes full_name,birth_date --png share.png
  eid share --offline --attributes personal_id,full_name,birth_date,gender --png share.png
  eid shares
  eid revoke-share shr_c18b4fc52ffde32ec4f6622867878adf
  export EID_API_KEY=$(eid-server party create --name "Demo Bank" | tail -n1)   # a party
  eid verify --id 001190791514
  eid request-otp --id 001190791514
  eid verify --id 001190791514 --otp 123456 --scopes basic
  eid verify --id 001190791514 --demographic --name "Nguyễn Thị Lan" --birth-date 1990
  eid redeem {SHARE_EXAMPLE}
  eid approval start --id 001190791514 --wait   # the citizen approves:
  eid approvals                            # ... in their app, with the session,
  eid approve apr_01b5ccfcb355081658966085 --code 4821    # ... confirming the code the party shows
  eid keys --out keys.json                 # once, with the server reachable
  eid verify-qr share.png --keys keys.json # then offline, with no server
  eid verify-receipt eyJhbGciOiJFZERTQSIs... --keys keys.json --audience rp_7b2b3ca8aeb00826
  eid webhook --url https://bank.example/eid/events   # status events
  eid resend-code --id 001190791514 --phone 0912345678
  eid history                              # who verified you, with the session
  eid lock-mode one_time_code              # no party may text you a code to verify you
  eid unlock-mode one_time_code --minutes 10   # ... except for the next 10 minutes
  eid modes
  eid sessions
  eid revoke-session ses_3be3fdb613b4cdec6cf8bfa9
  eid lock                                 # with the session in EID_SESSION
  eid send-code unlock --id 001190791514 --phone 0912345678
  eid unlock --id 001190791514 --code 123456
  eid sign-out
  eid --json health
  eid --target eid.example.vn:443 --ca-cert ca.pem --client-cert bank.pem \\
      --client-key bank.key health   # TLS, and a client certificate for mTLS

environment: EID_TARGET, EID_API_KEY, EID_PASSWORD, EID_SESSION, XDG_CACHE_HOME (keys cache),
  EID_TLS, EID_CA_CERT, EID_CLIENT_CERT, EID_CLIENT_KEY (TLS)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eid",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    global_options(parser, suppress=False)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    p = subcommand(
        sub,
        "register",
        _commands.register,
        "Register a level-1 account; an activation code is sent to the phone.",
        """
          eid register --id 001190791514 --name "Nguyễn Thị Lan" --birth-date 1990-05-17 \\
              --gender female --phone 0912345678 --email lan@example.vn --portrait face.f32
          eid register --passport M12345678 --nationality KOR --passport-issue-date 2019-03-04 \\
              --passport-issue-place Seoul --name "Kim Min Jun" --birth-date 1988-07-21 \\
              --gender male --phone 0912000111 --portrait face.f32
        """,
        details="""
          --portrait is the face the app captured, as its feature extractor renders it:
          a file of 128 little-endian float32 values (512 bytes). It is compared with the
          portrait the population registry enrolled and never stored. For a demo
          citizen, `eid-server demo-portrait --id ID --out face.f32` writes one that
          matches (development servers only).
          Foreigners give their passport instead of --id and sign in afterwards with
          the 12-digit number the registry assigned them, printed as "Personal ID".
        """,
    )
    p.add_argument(
        "--id", "--personal-id", dest="id", default="", help="12-digit personal ID number (CCCD)"
    )
    p.add_argument("--passport", metavar="NUMBER", help="a foreigner's passport number")
    p.add_argument("--nationality", metavar="ISO3", help="with --passport: e.g. KOR, USA")
    p.add_argument("--passport-issue-date", metavar="YYYY-MM-DD", help="with --passport")
    p.add_argument("--passport-issue-place", metavar="PLACE", help="with --passport")
    p.add_argument(
        "--portrait",
        required=True,
        metavar="FILE",
        help="the captured face: 128 little-endian float32 values (512 bytes)",
    )
    p.add_argument("--name", required=True, help="full name as on the ID card or passport")
    p.add_argument("--birth-date", required=True, metavar="YYYY-MM-DD", help="date of birth")
    p.add_argument("--gender", required=True, choices=["male", "female"])
    p.add_argument("--phone", required=True, help="mobile number, 0912345678 or +84912345678")
    p.add_argument("--email", default="", help="optional email address")
    request_id_option(p)

    p = subcommand(
        sub,
        "activate",
        _commands.activate,
        "Activate a registered account with its one-time code and set the password.",
        """
          eid activate --id 001190791514 --code 123456      # prompts twice for the password
          EID_PASSWORD=... eid activate --id 001190791514 --code 123456
        """,
    )
    id_option(p)
    p.add_argument("--code", required=True, help="the 6-digit activation code received")
    password_option(p, "the new password, 10 to 128 characters")
    request_id_option(p)

    p = subcommand(
        sub,
        "signin",
        _commands.signin,
        "Sign in as a citizen; prints the access token, valid 15 minutes (pass it as "
        "--session or EID_SESSION to share, sessions, lock, sign-out...).",
        """
          export EID_SESSION=$(eid signin --id 001190791514 --device-name "Lan's laptop")
          eid sign-in --id 001190791514 --password-stdin < pw.txt
          eid --json signin --id 001190791514   # also the refresh token and session id
        """,
        aliases=("sign-in",),
    )
    id_option(p)
    password_option(p, "the account password")
    p.add_argument(
        "--device-name",
        default="",
        metavar="NAME",
        help="a name for this device, shown by `eid sessions` (at most 64 characters)",
    )

    _verify_cli.add_commands(sub)  # request-otp, verify, redeem
    _approval_cli.add_commands(sub)  # approval start|wait, approvals, approve, decline, claim
    _share_cli.add_citizen_commands(sub)
    _dependant_cli.add_commands(sub)  # dependant-add, dependants
    _document_cli.add_commands(sub)  # documents link|list|unlink
    _share_cli.add_verifier_commands(sub)
    _receipt_cli.add_commands(sub)
    _webhook_cli.add_commands(sub)  # webhook, verify-event
    _history_cli.add_commands(sub)
    _mode_lock_cli.add_commands(sub)

    _account_cli.add_commands(sub)

    p = subcommand(
        sub,
        "health",
        _commands.health,
        "Print the server's health (SERVING, NOT_SERVING, ...); exit status 1 unless SERVING."
        " Sent once, never retried: it is a probe.",
        """
          eid --target eid.example.vn:443 health
        """,
    )
    p.add_argument("--service", default="", help="service name to check (default: the server)")
    # A readiness probe wants the state now, not after a retry's backoff.
    p.set_defaults(retry=RetryPolicy.off())
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 call failed, 2 bad usage)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help and usage errors: return, don't exit, for callers
        return exc.code if isinstance(exc.code, int) else 2
    out = Output(as_json=args.json)
    handler: Handler = args.handler
    try:
        tls = tls_from_args(args)
        retry: RetryPolicy | None = getattr(args, "retry", None)
        with EidClient(
            args.target, api_key=args.api_key, timeout=args.timeout, tls=tls, retry=retry
        ) as client:
            return handler(args, client, out)
    except _commands.UsageError as e:
        out.error(f"error: {e}")
        return 2
    except ValueError as e:  # the client refused the arguments before sending anything
        out.error(f"error: {e}")
        return 2
    except EidError as e:
        out.eid_error(e)
        if e.code == grpc.StatusCode.UNAVAILABLE:
            out.hint(f"Is the eid server running at {args.target}? (--target, EID_TARGET)")
        elif e.code == grpc.StatusCode.UNAUTHENTICATED and (e.reason or "").startswith("SESSION_"):
            # Access tokens last 15 minutes and this CLI keeps no refresh token.
            out.hint("Sign in again: export EID_SESSION=$(eid signin --id <your ID number>)")
        return 1
    except KeyboardInterrupt:
        return 130
