"""`eid-server audit verify`: checks every tamper-evident audit chain and
names each broken one at its first broken link.

A subject is shown only as the first 12 hex digits of its blind-index digest
(a keyed hash of the ID number): never the number or a name. Exit status 0
when every chain is intact, 1 when one is broken."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from eid_service.app import bootstrap
from eid_service.cli_values import whole_number
from eid_service.config import Settings
from eid_service.use_cases.audit_check import DEFAULT_BATCH, AuditReport, verify_audit_chains
from eid_service.use_cases.ports import BreakKind, BrokenLink

AUDIT_EXAMPLES = f"""\
examples:
  eid-server audit verify             check every chain; a table of broken ones, exit 1 if any
  eid-server audit verify --json      the same as one JSON object on stdout, for monitoring:
                                      {{"intact": false, "subjects": 1200, "events": 8431,
                                       "broken": [{{"subject": "3f2a9c0d1e4b", "seq": 4, ...}}]}}
  eid-server audit verify --batch 2000
                                      fewer, larger read transactions (default {DEFAULT_BATCH})
  eid-server audit verify --json | jq -r '.broken[].event_id // empty'

Each subject's events (the person an ID number names) form a chain of keyed
digests, with its head in audit_chains. An edited event, a deleted or inserted
one, and a removed last event or edited head are each found; a subject's whole
history removed together with its head is not (chains are per subject). The
check only reads, in short transactions, and may run while servers serve.
Subjects show as the first 12 hex digits of their blind index, never an ID number.
"""

SUBJECT_HEX = 12


def explain(link: BrokenLink) -> str:
    """One short line on what the broken link means (the seq is beside it)."""
    if link.kind is BreakKind.DIGEST_MISMATCH:
        return "edited: its fields no longer match its digest"
    if link.kind is BreakKind.SEQUENCE_GAP:
        if link.event_id is None:
            return "deleted: the chain skips this seq"
        return "inserted or renumbered: out of sequence"
    if link.kind is BreakKind.PREVIOUS_MISMATCH:
        return "does not link to the event before it (one removed or reordered)"
    if link.event_id is None:
        return "removed from the end: the head counts it"
    return "the head was edited: it does not name this, the last event"


def subject_hex(link: BrokenLink) -> str:
    return link.subject.hex()[:SUBJECT_HEX]


def broken_table(report: AuditReport) -> Table:
    table = Table(
        title=f"Broken audit chains ({len(report.broken)})", box=box.SIMPLE_HEAD, pad_edge=False
    )
    for column in ("subject", "seq", "event", "kind"):
        table.add_column(column, no_wrap=True)
    table.add_column("what it means")
    for link in report.broken:
        table.add_row(
            subject_hex(link), str(link.seq), link.event_id or "-", link.kind.value, explain(link)
        )
    return table


def summary(report: AuditReport) -> str:
    checked = f"{report.subjects} subject(s), {report.events} event(s) checked"
    if report.intact:
        return f"{checked}: every audit chain is intact"
    return f"{checked}: {len(report.broken)} chain(s) broken"


def as_json(report: AuditReport) -> dict[str, Any]:
    return {
        "intact": report.intact,
        "subjects": report.subjects,
        "events": report.events,
        "broken": [
            {
                "subject": subject_hex(link),
                "seq": link.seq,
                "event_id": link.event_id,
                "kind": link.kind.value,
                "explanation": explain(link),
            }
            for link in report.broken
        ],
    }


def add_audit_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = commands.add_parser(
        "audit",
        help="check the tamper-evident audit chains",
        description="The append-only access history: every Verify, share, lock and unlock.",
        epilog=AUDIT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = actions.add_parser(
        "verify",
        help="check every chain; name each broken one at its first broken link (exit 1)",
        description="Checks every subject's audit chain and its head. Exit status: 0 when "
        "every chain is intact, 1 when any is broken, 2 on bad settings.",
        epilog=AUDIT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verify.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    verify.add_argument(
        "--batch",
        type=_positive,
        default=DEFAULT_BATCH,
        metavar="N",
        help=f"subjects per read transaction (default {DEFAULT_BATCH})",
    )


# Bounded: a larger batch reached the database as a LIMIT it cannot hold
# (OverflowError traceback on SQLite) and would read every subject at once.
MAX_BATCH = 100_000


_positive = whole_number(
    1, MAX_BATCH, out_of_range=f"a whole number of at least 1 and at most {MAX_BATCH:,}"
)


async def run_audit_command(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    runtime = bootstrap(settings)
    try:
        with _progress_bar() as bar:
            task = bar.add_task("checking audit chains", total=None)

            def progress(report: AuditReport, total: int) -> None:
                bar.update(task, completed=report.subjects, total=max(total, report.subjects))

            report = await verify_audit_chains(runtime.uow, batch=args.batch, progress=progress)
    finally:
        await runtime.close()
    if args.json:
        print(json.dumps(as_json(report), indent=2))
    else:
        if not report.intact:
            console.print(broken_table(report))
        console.print(summary(report), style="green" if report.intact else "red", highlight=False)
    return 0 if report.intact else 1


def _progress_bar() -> Progress:
    """On stderr, so stdout holds only the table or the JSON."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("subjects"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
