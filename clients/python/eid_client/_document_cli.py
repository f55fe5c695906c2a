"""A level-2 citizen's linked documents in ``eid``: ``documents link``,
``documents list`` and ``documents unlink`` (session)."""

from __future__ import annotations

import argparse

from rich.table import Column

from eid.v1 import identity_service_pb2 as pb
from eid_client import _output
from eid_client._cli_common import Subparsers, request_id_option, session_option, subcommand
from eid_client._commands import UsageError, session_of
from eid_client._output import Output
from eid_client._requests import DOCUMENT_TYPE_NAMES
from eid_client.cli_args import positive_int
from eid_client.client import EidClient

_ABOUT = """
    A level-2 account (registered or upgraded at a registration office) links
    the documents the registries of their issuing agencies record for the
    citizen: driver's licence, vehicle registration, health insurance, social
    insurance, tax code. A document is named by type and number; spaces,
    hyphens and dots in the number do not matter. A relying party sees a
    linked document only when its operator granted it the matching scope
    (documents.tax_code, ...) and it asks for it, or in an online QR share
    that names it (eid share --attributes tax_code).
"""


def add_commands(sub: Subparsers) -> None:
    group = subcommand(
        sub,
        "documents",
        _action_missing,
        "Citizen, level 2: link, list and unlink your documents (driver's licence, tax code...).",
        """
          eid documents link tax_code 8012345678        # the session in EID_SESSION
          eid documents link vehicle_registration 29A-123.45
          eid documents list
          eid documents unlink tax_code 8012345678
        """,
        details=_ABOUT,
    )
    actions = group.add_subparsers(title="actions", metavar="ACTION", required=True)
    for name, handler, summary in (
        ("link", link, "Link a document the registry records for you."),
        ("unlink", unlink, "Unlink one of your documents: no party sees it from then on."),
    ):
        p = subcommand(
            actions,
            name,
            handler,
            summary,
            f"""
              eid documents {name} tax_code 8012345678
              eid documents {name} driving_licence 010112345678 --request-id {name}-1
            """,
            details=_ABOUT,
        )
        p.add_argument("type", choices=DOCUMENT_TYPE_NAMES, metavar="TYPE", help=_type_help())
        p.add_argument("number", metavar="NUMBER", help="the number on the document")
        session_option(p)
        request_id_option(p)

    p = subcommand(
        actions,
        "list",
        list_documents,
        "List your linked documents, by type.",
        """
          eid documents list
          eid --json documents list | jq -r '.documents[].number'
        """,
    )
    session_option(p)
    p.add_argument(
        "--page-size",
        type=positive_int,
        default=0,
        metavar="N",
        help="documents per call, at most 100 (default: the server's, 20); all pages are shown",
    )


def _type_help() -> str:
    return "one of " + ", ".join(DOCUMENT_TYPE_NAMES)


def _action_missing(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    raise UsageError("name an action: eid documents link|list|unlink")


def _rows(document: pb.LinkedDocument) -> list[tuple[str, str]]:
    return [
        ("Type", _output.document_type(document.type)),
        ("Number", document.number),
        ("Issuer", document.issuer),
        ("Valid from", document.valid_from),
        ("Valid until", document.valid_until or "no end"),
        ("Linked", _output.when(document.link_time)),
    ]


def _columns() -> list[Column]:
    return [Column(header) for header, _ in _rows(pb.LinkedDocument())]


def link(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    token = session_of(args, "documents link")
    response = client.link_document(
        args.type, args.number, request_id=args.request_id, session_token=token
    )
    out.result(response, "Linked document", _rows(response.document))
    return 0


def unlink(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    token = session_of(args, "documents unlink")
    response = client.unlink_document(
        args.type, args.number, request_id=args.request_id, session_token=token
    )
    out.result(response, "Unlinked document", _rows(response.document))
    return 0


def list_documents(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    token = session_of(args, "documents list")
    found = list(client.iter_linked_documents(page_size=args.page_size, session_token=token))
    if out.as_json:
        out.json(pb.ListLinkedDocumentsResponse(documents=found))
        return 0
    if not found:
        out.raw("No linked documents.")
        return 0
    out.grid(
        "Linked documents",
        _columns,
        [[value for _, value in _rows(d)] for d in found],
        caption="by type",
    )
    return 0
