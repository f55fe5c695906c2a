"""What the account's-life subcommands do: codes, sessions, lock and unlock.

The CLI keeps no session file: citizen calls take the access token from
``--session`` or ``$EID_SESSION`` (``eid signin`` prints it), like ``eid share``.
"""

from __future__ import annotations

import argparse
import os

from eid.v1 import identity_service_pb2 as pb
from eid_client import _output
from eid_client._commands import UsageError, password_of, session_of
from eid_client._output import Output
from eid_client.client import EidClient


def resend_code(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    response = client.resend_activation_code(
        personal_id=args.id,
        phone_number=args.phone or "",
        email=args.email or "",
        request_id=args.request_id,
    )
    out.result(response, "Activation code", _output.delivery_rows(response.delivery))
    # The server answers alike whether or not the details match a PENDING account.
    out.hint("If these details match an account awaiting activation, a new code is on its way")
    out.hint("and the previous one no longer works.")
    out.hint(
        f"Next: eid activate --id {_output.shell_word(args.id)} --code <the code you received>"
    )
    return 0


_NEXT_STEP = {
    "lock": "eid lock --id {id} --code <the code you received>",
    "unlock": "eid unlock --id {id} --code <the code you received>   # prompts for the password",
}


def send_code(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    response = client.send_account_code(
        purpose=args.purpose,
        personal_id=args.id,
        phone_number=args.phone or "",
        email=args.email or "",
        request_id=args.request_id,
    )
    out.result(
        response, f"{args.purpose.capitalize()} code", _output.delivery_rows(response.delivery)
    )
    state = "an active" if args.purpose == "lock" else "a locked"
    out.hint(f"If these details match {state} account, a code is on its way.")
    out.hint("Next: " + _NEXT_STEP[args.purpose].format(id=args.id))
    return 0


def sessions(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    token = session_of(args, "sessions")
    found = list(client.iter_sessions(page_size=args.page_size, session_token=token))
    if out.as_json:
        out.json(pb.ListSessionsResponse(sessions=found))
        return 0
    if not found:
        out.raw("No live sessions.")
        return 0
    out.grid(
        "Sessions",
        _output.session_columns,
        [_output.session_cells(s) for s in found],
        caption=f"{_output.CURRENT_MARK} this session; times in {_output.local_zone()}",
        heading_cells=2,
    )
    out.hint("End one with: eid revoke-session <Session ID>")
    return 0


def revoke_session(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    token = session_of(args, "revoke-session")
    response = client.revoke_session(
        args.session_id, request_id=args.request_id, session_token=token
    )
    if out.as_json:
        out.json(response)
    else:
        out.raw(f"Session {args.session_id} ended.")
    return 0


def sign_out(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    token = session_of(args, "sign-out")
    response = client.sign_out(request_id=args.request_id, session_token=token)
    if out.as_json:
        out.json(response)
    else:
        out.raw("Signed out.")
    out.hint("The token no longer works; you may `unset EID_SESSION`.")
    return 0


def lock(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    gave_password = bool(args.password or args.password_stdin)
    if args.code:
        if not args.id:
            raise UsageError("lock --code needs --id")
        if gave_password:
            raise UsageError("lock with --code or with a password, not both")
        response = client.lock_account(
            personal_id=args.id, one_time_code=args.code, request_id=args.request_id
        )
    elif args.id:
        response = client.lock_account(
            personal_id=args.id, password=password_of(args), request_id=args.request_id
        )
    elif gave_password:
        raise UsageError("a password goes with --id: eid lock --id ... --password-stdin")
    else:
        token = session_of(args, "lock (without --id)")
        response = client.lock_account(request_id=args.request_id, session_token=token)
    out.result(response, "Account locked", _output.lock_rows(response))
    out.hint("Every session and unredeemed QR share has ended; the phone and email were told.")
    out.hint(
        "To unlock: eid send-code unlock --id <ID> --phone <phone>, then "
        "eid unlock --id <ID> --code <code>; or see a registration officer."
    )
    return 0


def unlock(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    if args.officer_key_env:
        if args.password or args.password_stdin:
            raise UsageError("an officer unlocks without the citizen's password")
        key = os.environ.get(args.officer_key_env)
        if not key:
            raise UsageError(
                f"--officer-key-env {args.officer_key_env}: that variable is not set or empty"
            )
        response = client.unlock_account_by_officer(
            personal_id=args.id, officer_key=key, request_id=args.request_id
        )
    else:
        response = client.unlock_account(
            personal_id=args.id,
            one_time_code=args.code,
            password=password_of(args),
            request_id=args.request_id,
        )
    out.result(response, "Account unlocked", _output.unlock_rows(response))
    out.hint(f"Sign in again: export EID_SESSION=$(eid signin --id {_output.shell_word(args.id)})")
    return 0
