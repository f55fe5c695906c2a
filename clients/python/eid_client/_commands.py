"""What each ``eid`` subcommand does, given parsed arguments and a connected client."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from eid_client import _output
from eid_client._output import Output
from eid_client._requests import Passport
from eid_client.client import EidClient


class UsageError(Exception):
    """The command line cannot be carried out as given (exit status 2)."""


def resolve_password(given: str | None, *, from_stdin: bool = False, confirm: bool = False) -> str:
    """``--password``, ``--password-stdin``, else ``$EID_PASSWORD``, else a prompt
    when a person is there to answer."""
    if given:
        return given
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise UsageError("--password-stdin: no password on standard input")
        return line
    from_env = os.environ.get("EID_PASSWORD")
    if from_env:
        return from_env
    if not sys.stdin.isatty():
        raise UsageError(
            "no password given: pass --password, set EID_PASSWORD, "
            "or run in a terminal to be prompted"
        )
    password = getpass.getpass("Password: ")
    if not password:
        raise UsageError("empty password")
    # A mistyped new password would lock the citizen out, so ask twice.
    if confirm and getpass.getpass("Repeat password: ") != password:
        raise UsageError("passwords do not match")
    return password


def password_of(args: argparse.Namespace, *, confirm: bool = False) -> str:
    """The password the command line points to (see :func:`resolve_password`)."""
    return resolve_password(args.password, from_stdin=args.password_stdin, confirm=confirm)


def session_of(args: argparse.Namespace, command: str) -> str:
    """The citizen's access token from --session or $EID_SESSION."""
    if not args.session:
        raise UsageError(
            f"{command} needs a citizen session: pass --session TOKEN or set EID_SESSION "
            "(export EID_SESSION=$(eid signin --id ...))"
        )
    session: str = args.session
    return session


def require_api_key(client: EidClient, command: str) -> None:
    if not client.api_key:
        raise UsageError(f"{command} is a relying-party call: pass --api-key or set EID_API_KEY")


def _passport(args: argparse.Namespace) -> Passport | None:
    """The foreigner's passport from --passport and its companions, or None."""
    details = (args.nationality, args.passport_issue_date, args.passport_issue_place)
    if args.passport is None:
        if any(d is not None for d in details):
            raise UsageError("--nationality and --passport-issue-* go with --passport (foreigners)")
        if not args.id:
            raise UsageError("give --id (citizens) or --passport (foreigners)")
        return None
    if args.id:
        raise UsageError("give --id (citizens) or --passport (foreigners), not both")
    if any(d is None for d in details):
        raise UsageError(
            "--passport needs --nationality, --passport-issue-date and --passport-issue-place"
        )
    return Passport(args.passport, args.nationality, *details[1:])


def read_portrait(path: str) -> bytes:
    """The raw bytes of a portrait file (the server checks their form)."""
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read the portrait {path}: {e.strerror}") from None


def register(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    passport = _passport(args)
    response = client.register(
        personal_id=args.id,
        full_name=args.name,
        birth_date=args.birth_date,
        gender=args.gender,
        phone_number=args.phone,
        email=args.email,
        portrait=read_portrait(args.portrait),
        passport=passport,
        request_id=args.request_id,
    )
    out.result(response, "Registered", _output.register_rows(response))
    username = response.personal_id or args.id
    out.hint(
        f"Next: eid activate --id {_output.shell_word(username)} --code <the code you received>"
    )
    return 0


def activate(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    password = password_of(args, confirm=True)
    response = client.activate(
        personal_id=args.id,
        activation_code=args.code,
        new_password=password,
        request_id=args.request_id,
    )
    out.result(response, "Activated", _output.activate_rows(response))
    return 0


def signin(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    response = client.sign_in(
        personal_id=args.id, password=password_of(args), device_name=args.device_name
    )
    if out.as_json:
        out.json(response)
        return 0
    # Only the token on stdout, so that EID_SESSION=$(eid signin ...) works.
    out.raw(response.session_token)
    out.hint(
        f"Session {response.session_id or '-'}: the token expires "
        f"{_output.when(response.expire_time)}; use it with --session or EID_SESSION."
    )
    return 0


def health(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    status = client.health(args.service)
    if out.as_json:
        out.json_object({"status": status})
    else:
        out.raw(status)
    # Non-zero unless serving, so that `eid health` works as a readiness probe.
    return 0 if status == "SERVING" else 1
