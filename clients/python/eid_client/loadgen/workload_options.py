"""Each workload's subcommand: what it needs to prepare its calls, with examples."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from textwrap import dedent, indent

from eid_client.cli_args import positive_int
from eid_client.loadgen.workloads import WORKLOADS

ID = "001190791514"
CSV_HELP = (
    "a CSV file with a header row naming some of personal_id, password, full_name, "
    "birth_date, gender, phone, portrait (one citizen per row)"
)
EXAMPLES = {
    "health": """
        eid-loadgen --rps 1000 --duration 10s health
        eid-loadgen --concurrency 64 --processes 2 --total 50000 health
    """,
    "verify-password": f"""
        eid-loadgen --api-key $KEY verify-password --id {ID} --total 200
        EID_PASSWORD=... eid-loadgen --api-key $KEY --rps 40 --duration 30s \\
            verify-password --citizens accounts.csv
    """,
    "verify-token": f"""
        eid-loadgen --api-key $KEY verify-token --id {ID} --total 2000
        eid-loadgen --api-key $KEY --rps 500 --duration 20s --warmup 2s verify-token --id {ID}
        EID_SESSION=$(eid signin --id {ID}) eid-loadgen --api-key $KEY verify-token
    """,
    "verify-otp": """
        eid-loadgen --api-key $KEY --total 100 verify-otp --citizens otp.csv --outbox var/outbox.log
    """,
    "verify-demographic": f"""
        eid-loadgen --api-key $KEY --total 1000 verify-demographic --id {ID} \\
            --name "Nguyễn Thị Lan" --birth-date 1990-05-17 --gender female
        eid-loadgen --api-key $KEY --rps 200 --duration 30s verify-demographic \\
            --citizens registry.csv --partial
    """,
    "register": """
        eid-loadgen --total 500 --concurrency 16 register --citizens unregistered.csv
    """,
    "sign-in": f"""
        eid-loadgen --total 100 sign-in --id {ID} --password "correct horse battery staple"
    """,
    "share-via-qr": f"""
        eid-loadgen --total 1000 share-via-qr --id {ID} --attributes full_name,birth_date
    """,
    "start-approval": """
        eid-loadgen --api-key $KEY --rps 50 --duration 10s start-approval
    """,
}
NOTES = {
    "verify-password": "Checks of one citizen from one source run one at a time on the "
    "server (by design), so spread the load over several citizens (--id repeated or "
    "--citizens).",
    "verify-otp": "Each call needs a citizen of its own (a code is bound to the party and "
    "the citizen): the file needs personal_id and phone (an ACTIVE account's), and the "
    "codes are read from the development outbox file of a server on this machine.",
    "register": "Each call registers one citizen of the population registry that has no "
    "account yet: the file needs personal_id, full_name, birth_date, gender, phone and "
    "portrait, the captured face as base64 of its 512 bytes (128 float32 values; for demo "
    "citizens, `eid-server demo-portrait --id ID --out FILE` writes one; `eid-server "
    "load-demo --synthetic N` adds N registrable citizens).",
    "start-approval": "Without --id, the QR variant (no citizen); with --id, requests pushed "
    "to those citizens (limited per citizen). The party needs the approval mode.",
}


def _citizens(p: argparse.ArgumentParser, *, password: bool, required: bool = False) -> None:
    if not required:
        p.add_argument(
            "--id",
            action="append",
            metavar="ID",
            help="a citizen's ID number (repeatable)",
        )
    p.add_argument("--citizens", type=Path, metavar="FILE", required=required, help=CSV_HELP)
    if password:
        p.add_argument(
            "--password",
            metavar="PW",
            help="their password where the file gives none (else $EID_PASSWORD, else prompted)",
        )


def _session(p: argparse.ArgumentParser) -> None:
    p.add_argument("--id", action="append", metavar="ID", help="sign this citizen in")
    p.add_argument("--password", metavar="PW", help="the citizen's password, with --id")
    p.add_argument(
        "--session",
        metavar="TOKEN",
        default=os.environ.get("EID_SESSION"),
        help="an existing citizen session token instead (env EID_SESSION)",
    )
    p.add_argument(
        "--attributes",
        default="full_name,birth_date,gender",
        help="attributes each share carries (default full_name,birth_date,gender)",
    )


def _issue(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--issue-concurrency",
        type=positive_int,
        default=4,
        metavar="N",
        help=f"{what} calls in flight while preparing (default 4; not measured)",
    )


def add_workloads(
    parser: argparse.ArgumentParser, common: Callable[[argparse.ArgumentParser], None]
) -> None:
    sub = parser.add_subparsers(title="workloads", metavar="WORKLOAD", required=True)
    made = {}
    for name, w in WORKLOADS.items():
        text = f"{w.label}: {w.summary}."
        if name in NOTES:
            text += "\n\n" + NOTES[name]
        p = sub.add_parser(
            name,
            help=w.summary,
            description=text,
            epilog="examples:\n" + indent(dedent(EXAMPLES[name]).strip("\n"), "  "),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        common(p)
        p.set_defaults(workload=name, workload_api_key=w.api_key)
        made[name] = p
    _citizens(made["verify-password"], password=True)
    _citizens(made["sign-in"], password=True)
    _session(made["verify-token"])
    _issue(made["verify-token"], "ShareViaQR")
    _session(made["share-via-qr"])
    _citizens(made["verify-otp"], password=False, required=True)
    made["verify-otp"].add_argument(
        "--outbox",
        type=Path,
        default=Path("var/outbox.log"),
        metavar="FILE",
        help="the server's development outbox file, EID_OUTBOX_FILE (default var/outbox.log)",
    )
    _issue(made["verify-otp"], "RequestOtp")
    demographic = made["verify-demographic"]
    _citizens(demographic, password=False)
    demographic.add_argument("--name", help="the declared full name, with one --id")
    demographic.add_argument("--birth-date", metavar="DATE", help="YYYY-MM-DD (or a year)")
    demographic.add_argument("--gender", choices=("male", "female"))
    demographic.add_argument(
        "--partial",
        action="store_true",
        help="match names partially (the party's threshold)",
    )
    _citizens(made["register"], password=False, required=True)
    made["start-approval"].add_argument(
        "--id", action="append", metavar="ID", help="push to this citizen (repeatable)"
    )
