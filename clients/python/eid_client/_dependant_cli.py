"""A guardian's dependants in ``eid``: ``dependant-add`` registers a child under
14 under the signed-in account, ``dependants`` lists them. Sharing a
dependant's attributes is ``eid share --dependant ACCOUNT_ID``."""

from __future__ import annotations

import argparse

from rich.table import Column

from eid.v1 import identity_service_pb2 as pb
from eid_client import _output
from eid_client._cli_common import Subparsers, request_id_option, session_option, subcommand
from eid_client._commands import session_of
from eid_client._output import Output
from eid_client.cli_args import positive_int
from eid_client.client import EidClient


def add_commands(sub: Subparsers) -> None:
    p = subcommand(
        sub,
        "dependant-add",
        dependant_add,
        "Guardian: register your child under 14 as a dependant of your account.",
        """
          eid dependant-add --id 079211000123 --name "Phạm Minh Khang" --birth-date 2015-03-10 \\
              --gender male                       # the session in EID_SESSION
        """,
        details="""
            The population registry must record you as the child's parent or guardian,
            and the child's data must match it. The child's account has no password: it
            is verified only through QR codes you share for it (eid share --dependant).
            When the child turns 14 you are told; the child then registers with its own
            phone (eid register) and activates the account, which becomes its own.
        """,
    )
    p.add_argument("--id", "--personal-id", dest="id", required=True, help="the child's ID number")
    p.add_argument("--name", required=True, help="the child's full name as registered")
    p.add_argument("--birth-date", required=True, metavar="YYYY-MM-DD", help="date of birth")
    p.add_argument("--gender", required=True, choices=["male", "female"])
    session_option(p)
    request_id_option(p)

    p = subcommand(
        sub,
        "dependants",
        dependants,
        "Guardian: list your dependants, oldest first, and when each may take over.",
        """
          eid dependants
          eid --json dependants | jq -r '.dependants[].account.account_id'
        """,
    )
    session_option(p)
    p.add_argument(
        "--page-size",
        type=positive_int,
        default=0,
        metavar="N",
        help="dependants per call, at most 100 (default: the server's, 20); all pages are shown",
    )


def _rows(d: pb.Dependant) -> list[tuple[str, str]]:
    return [
        ("Account ID", d.account.account_id),
        ("Name", d.attributes.full_name),
        ("ID number", d.attributes.personal_id),
        ("Birth date", d.attributes.birth_date),
        ("State", _output.state(d.account.state)),
        ("Takes over from", d.take_over_date + (" (now)" if d.can_take_over else "")),
    ]


def _columns() -> list[Column]:
    return [Column(header) for header, _ in _rows(pb.Dependant())]


def dependant_add(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    token = session_of(args, "dependant-add")
    response = client.register_dependant(
        personal_id=args.id,
        full_name=args.name,
        birth_date=args.birth_date,
        gender=args.gender,
        request_id=args.request_id,
        session_token=token,
    )
    out.result(response, "Dependant", _rows(response.dependant))
    account_id = response.dependant.account.account_id
    out.hint(f"Share the child's data: eid share --dependant {_output.shell_word(account_id)}")
    return 0


def dependants(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    token = session_of(args, "dependants")
    found = list(client.iter_dependants(page_size=args.page_size, session_token=token))
    if out.as_json:
        out.json(pb.ListDependantsResponse(dependants=found))
        return 0
    if not found:
        out.raw("No dependants.")
        return 0
    out.grid(
        "Dependants",
        _columns,
        [[value for _, value in _rows(d)] for d in found],
        caption="oldest first",
    )
    return 0
