"""The account's-life subcommands of ``eid``: resend-code, send-code, sessions,
revoke-session, sign-out, lock and unlock (handlers in _account_commands.py)."""

from __future__ import annotations

from eid_client import _account_commands as commands
from eid_client._cli_common import (
    SESSION_EXAMPLE,
    Subparsers,
    contact_options,
    id_option,
    password_option,
    request_id_option,
    session_option,
    subcommand,
)
from eid_client.cli_args import positive_int


def add_commands(sub: Subparsers) -> None:
    p = subcommand(
        sub,
        "resend-code",
        commands.resend_code,
        "Send a new activation code to an account awaiting activation.",
        """
          eid resend-code --id 001190791514 --phone 0912345678
          eid resend-code --personal-id 001190791514 --email lan@example.vn
        """,
        details="""
            The codes sent before it keep working: any of the 3 newest does until it
            expires. Give the ID number and the phone or email
            the account was registered with; the answer is the same whether they match
            or not. At most once a minute and 5 times a day from one address.
        """,
    )
    id_option(p)
    contact_options(p)
    request_id_option(p)

    p = subcommand(
        sub,
        "send-code",
        commands.send_code,
        "Send a one-time code to lock or to unlock your account.",
        """
          eid send-code lock --id 001190791514 --email lan@example.vn
          eid send-code unlock --id 001190791514 --phone 0912345678
        """,
        details="""
            `lock` is for an active account (the phone is lost, the number kept on a new
            SIM card): lock it with `eid lock --id ... --code ...`. `unlock` is for a
            locked account: `eid unlock --id ... --code ...` with the password. The
            code goes to the registered phone or email you give; the answer is the same
            whether they match or not. Any of the 3 newest codes works until it expires.
            At most once a minute and 5 times a day from one address.
        """,
    )
    p.add_argument("purpose", choices=["lock", "unlock"], help="what the code will be for")
    id_option(p)
    contact_options(p)
    request_id_option(p)

    p = subcommand(
        sub,
        "sessions",
        commands.sessions,
        "List your signed-in devices (live sessions), newest first; * marks this one.",
        f"""
          eid sessions                              # the session in EID_SESSION
          eid sessions --session {SESSION_EXAMPLE}
          eid --json sessions | jq -r '.sessions[].session_id'
        """,
    )
    session_option(p)
    p.add_argument(
        "--page-size",
        type=positive_int,
        default=0,
        metavar="N",
        help="sessions per call, at most 100 (default: the server's, 20); all pages are shown",
    )

    p = subcommand(
        sub,
        "revoke-session",
        commands.revoke_session,
        "End one of your sessions, on this device or another (IDs from `eid sessions`).",
        f"""
          eid revoke-session ses_3be3fdb613b4cdec6cf8bfa9
          eid revoke-session ses_3be3fdb613b4cdec6cf8bfa9 --session {SESSION_EXAMPLE}
        """,
    )
    p.add_argument("session_id", metavar="SESSION_ID", help="the session to end")
    session_option(p)
    request_id_option(p)

    p = subcommand(
        sub,
        "sign-out",
        commands.sign_out,
        "End this session: its access and refresh tokens stop working.",
        f"""
          eid sign-out && unset EID_SESSION
          eid sign-out --session {SESSION_EXAMPLE}
        """,
        aliases=("signout",),
    )
    session_option(p)
    request_id_option(p)

    p = subcommand(
        sub,
        "lock",
        commands.lock,
        "Lock your account at once (a lost or stolen phone, a leaked password).",
        """
          eid lock                                         # the session in EID_SESSION
          eid lock --id 001190791514 --password-stdin < pw.txt
          eid send-code lock --id 001190791514 --email lan@example.vn
          eid lock --id 001190791514 --code 123456         # the phone is lost
        """,
        details="""
            Every session and every unredeemed QR share ends; verifying, signing in and
            sharing fail with ACCOUNT_LOCKED until the account is unlocked; the
            registered phone and email are told. Prove it is you with the session
            (--session or EID_SESSION), with --id and the password, or with --id and a
            lock code from `eid send-code lock`.
        """,
    )
    p.add_argument("--id", "--personal-id", dest="id", help="12-digit personal ID number")
    password_option(p, "the account password, with --id")
    p.add_argument("--code", metavar="CODE", help="a 6-digit lock code, with --id")
    session_option(p)
    request_id_option(p)

    p = subcommand(
        sub,
        "unlock",
        commands.unlock,
        "Unlock a locked account: the citizen with a code, or a registration officer.",
        """
          eid send-code unlock --id 001190791514 --phone 0912345678
          eid unlock --id 001190791514 --code 123456            # prompts for the password
          eid unlock --id 001190791514 --code 123456 --password-stdin < pw.txt
          export EID_OFFICER_KEY=$(eid-server officer create --name "Desk 2" | tail -n1)
          eid unlock --id 001190791514 --officer-key-env EID_OFFICER_KEY   # an officer
        """,
        details="""
            The citizen gives an unlock code from `eid send-code unlock` and the
            password. A registration officer who has checked the citizen in person
            gives the officer key through an environment variable (--officer-key-env),
            never on the command line. The unlock is recorded with who did it.
        """,
    )
    id_option(p)
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--code", metavar="CODE", help="the 6-digit unlock code (citizen)")
    how.add_argument(
        "--officer-key-env",
        metavar="VAR",
        help="registration officer: the environment variable holding the officer key",
    )
    password_option(p, "the account password, with --code")
    request_id_option(p)
