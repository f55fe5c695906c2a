"""`eid-server registry`: what a population-registry operator does: record a
citizen's death, which deactivates their account at once
(use_cases/deceased.py); generate a synthetic registry and import registry
files in bulk (registry_tools/)."""

from __future__ import annotations

import argparse
import os
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from eid_service.app import bootstrap
from eid_service.cli_values import whole_number
from eid_service.config import Settings
from eid_service.domain.errors import InvalidInput, NotFound
from eid_service.use_cases.context import utc_now
from eid_service.use_cases.deceased import record_death

REGISTRY_EXAMPLES = """\
examples:
  eid-server registry mark-deceased --id 001190791514 --date 2026-03-01
        the registry records the death; the citizen's account (if any) is
        deactivated at once: no sign-in, sessions and QR shares end, Verify
        answers CITIZEN_DECEASED to a party that proves a credential, and
        parties that verified the citizen get an account.deactivated event.
        Running it again for the same citizen changes nothing (exit 1), except
        deactivating an account still active.
  eid-server registry generate --count 100000
        a synthetic registry of 100,000 people straight into the database:
        households with children under 14 and their guardians, 1% foreigners
        with passports, portraits, fingerprints, documents (--seed: another
        registry; the same seed and count: the same people)
  eid-server registry generate --count 1000000 --out var/registry.jsonl
        ... written to a file instead (.jsonl or .csv), to import later
        (add --load to do both)
  eid-server registry import var/registry.jsonl
        import a registry file (JSON Lines or CSV, UTF-8; README: "The
        population registry" has the fields); a bad row is reported with its
        line number and reason, the others are imported; importing the same
        file again adds nothing (exit 1 if any row was bad)
"""


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        # Not repeated: a date of death is personal data, kept out of errors.
        raise argparse.ArgumentTypeError("not a date (YYYY-MM-DD)") from None


def add_registry_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    registry = commands.add_parser(
        "registry",
        help="the population registry: record a death, generate, import",
        description="What a population-registry operator records.",
        epilog=REGISTRY_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = registry.add_subparsers(dest="registry_command", required=True, metavar="ACTION")
    deceased = actions.add_parser(
        "mark-deceased",
        help="record a citizen's death and deactivate their account",
        epilog=REGISTRY_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    deceased.add_argument(
        "--id", dest="personal_id", required=True, help="the 12-digit personal ID number"
    )
    deceased.add_argument(
        "--date",
        dest="died_on",
        required=True,
        type=_iso_date,
        metavar="YYYY-MM-DD",
        help="the date of death (not ahead of today, not before the birth date)",
    )
    _add_bulk_commands(actions)


# As registry_tools/generator.py and pipeline.py set them; the tools (numpy,
# worker processes) are imported when a bulk command runs, not by every
# eid-server process (server workers start by importing this CLI).
MAX_COUNT = 180_000_000
DEFAULT_BATCH = 100_000
EARLIEST_AS_OF = date(1994, 1, 1)
LATEST_AS_OF = date(2399, 12, 31)


_seed = whole_number(0)  # numpy's generators take no negative seed


def _as_of(text: str) -> date:
    day = _iso_date(text)
    if not EARLIEST_AS_OF <= day <= LATEST_AS_OF:
        # Outside, some people made would be born before 1900 or after 2399.
        raise argparse.ArgumentTypeError(
            f"between {EARLIEST_AS_OF.isoformat()} and {LATEST_AS_OF.isoformat()}"
        )
    return day


_count = whole_number(1, MAX_COUNT, out_of_range=f"between 1 and {MAX_COUNT:,}")


_workers = whole_number(0, out_of_range="0 (in this process) or more")


def _add_bulk_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers",
        type=_workers,
        default=os.cpu_count() or 1,
        metavar="N",
        help="processes that make or read and seal people (default: the CPU count; "
        "0: this process alone)",
    )
    parser.add_argument(
        "--batch",
        type=_count,
        default=DEFAULT_BATCH,
        metavar="N",
        help=f"people per write transaction (default {DEFAULT_BATCH:,})",
    )


def _add_bulk_commands(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    generate = actions.add_parser(
        "generate",
        help="make a synthetic registry: into the database, or a file with --out",
        epilog=REGISTRY_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    generate.add_argument(
        "--count", type=_count, required=True, metavar="N", help="how many people"
    )
    generate.add_argument(
        "--seed", type=_seed, default=0, metavar="S", help="which registry (default 0)"
    )
    generate.add_argument(
        "--as-of",
        dest="as_of",
        type=_as_of,
        metavar="YYYY-MM-DD",
        help="the day ages are counted on (default today): the same seed, count and "
        "day make the same registry",
    )
    generate.add_argument(
        "--out", type=Path, metavar="FILE", help="write the people to FILE (.jsonl or .csv)"
    )
    generate.add_argument(
        "--format", choices=("jsonl", "csv"), help="the file's format (default: its extension)"
    )
    generate.add_argument(
        "--load",
        action="store_true",
        help="with --out: load them into the database too (without --out, they are)",
    )
    _add_bulk_options(generate)
    load = actions.add_parser(
        "import",
        help="import a registry file (JSON Lines or CSV); bad rows are reported, not fatal",
        epilog=REGISTRY_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    load.add_argument("file", type=Path, metavar="FILE", help="the .jsonl or .csv file")
    load.add_argument(
        "--format", choices=("jsonl", "csv"), help="the file's format (default: its extension)"
    )
    load.add_argument(
        "--errors",
        type=Path,
        metavar="FILE",
        help="write every bad row (line, field, reason) to FILE as CSV",
    )
    _add_bulk_options(load)


def registry_needs_store(args: argparse.Namespace) -> bool:
    """False for `registry generate --out FILE` without --load: a file alone
    needs neither keys nor a database."""
    if args.registry_command != "generate":
        return True
    return args.out is None or args.load


# Bad rows printed; all of them go to --errors FILE.
SHOWN_BAD_ROWS = 50


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)


async def _generate(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    from eid_service.registry_tools.pipeline import generate_registry
    from eid_service.registry_tools.records import file_format

    fmt = None
    if args.out is not None:
        try:
            fmt = file_format(args.out.name, args.format)
        except ValueError as bad:
            console.print(f"[red]{escape(str(bad))}[/red]")
            return 2
        if not args.out.parent.is_dir():
            console.print(f"[red]no such folder: {escape(str(args.out.parent))}[/red]")
            return 2
    as_of = args.as_of or utc_now().date()
    runtime = bootstrap(settings) if registry_needs_store(args) else None
    try:
        done = await generate_registry(
            count=args.count,
            seed=args.seed,
            as_of=as_of,
            out=args.out,
            fmt=fmt,
            uow=None if runtime is None else runtime.uow,
            ring=None if runtime is None else runtime.key_ring,
            workers=args.workers,
            batch=args.batch,
            console=console,
        )
    finally:
        if runtime is not None:
            await runtime.close()
    console.print(
        f"generated {done.people:,} people (seed {args.seed}, as of {as_of.isoformat()}):"
        f" {done.foreigners:,} foreigners with passports, {done.children:,} children under 14"
        f" with their guardians, {done.documents:,} documents;"
        f" {done.seconds:.1f} s, {done.rate:,.0f} people/s"
    )
    if args.out is not None:
        console.print(f"wrote {escape(str(args.out))} ({_size(done.file_bytes)}, {fmt})")
    if runtime is not None:
        present = done.people - done.added - done.refused
        refused = (
            f", {done.refused:,} refused (another person holds their passport or a document,"
            " or their guardian was refused)"
            if done.refused
            else ""
        )
        console.print(f"registry: {done.added:,} added, {present:,} already present{refused}")
    return 1 if done.refused else 0


async def _import(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    from eid_service.registry_tools.pipeline import format_bad_row, import_registry, write_bad_rows
    from eid_service.registry_tools.records import file_format

    try:
        fmt = file_format(args.file.name, args.format)
    except ValueError as bad:
        console.print(f"[red]{escape(str(bad))}[/red]")
        return 2
    if not args.file.is_file():
        console.print(f"[red]no such file: {escape(str(args.file))}[/red]")
        return 2
    # Checked before the import, not found out after an hour of it.
    if args.errors is not None and (args.errors.is_dir() or not args.errors.parent.is_dir()):
        console.print(f"[red]cannot write --errors {escape(str(args.errors))}[/red]")
        return 2
    runtime = bootstrap(settings)
    try:
        done = await import_registry(
            path=args.file,
            fmt=fmt,
            uow=runtime.uow,
            ring=runtime.key_ring,
            workers=args.workers,
            today=utc_now().date(),
            batch=args.batch,
            console=console,
        )
    except (ValueError, UnicodeDecodeError) as bad:
        console.print(f"[red]{escape(str(args.file))} cannot be imported[/red]: {escape(str(bad))}")
        return 2
    finally:
        await runtime.close()
    for bad_row in done.bad[:SHOWN_BAD_ROWS]:
        console.print(escape(format_bad_row(bad_row)), highlight=False)
    if len(done.bad) > SHOWN_BAD_ROWS:
        more = len(done.bad) - SHOWN_BAD_ROWS
        where = (
            f" (all in {escape(str(args.errors))})"
            if args.errors
            else " (--errors FILE lists them all)"
        )
        console.print(f"... and {more:,} more bad rows{where}")
    if args.errors is not None:
        write_bad_rows(done.bad, args.errors)
    console.print(
        f"read {done.rows:,} rows in {done.seconds:.1f} s ({done.rate:,.0f} rows/s):"
        f" {done.added:,} added, {done.present:,} already present, {len(done.bad):,} bad"
    )
    return 1 if done.bad else 0


def after_interrupt(args: argparse.Namespace) -> str:
    """What an operator who stopped a registry command does next."""
    if args.registry_command == "import":
        # Batches commit as they go; rows written count as already present.
        return "the people written so far stay; run the same import again to finish it"
    if args.registry_command == "generate" and args.out is not None:
        return f"{escape(str(args.out))} is incomplete; generate it again"
    if args.registry_command == "generate":
        return "the people written so far stay; the same generate again adds the rest"
    return "nothing was recorded unless it said so"


async def run_registry_command(
    settings: Settings, args: argparse.Namespace, console: Console
) -> int:
    if args.registry_command == "generate":
        return await _generate(settings, args, console)
    if args.registry_command == "import":
        return await _import(settings, args, console)
    runtime = bootstrap(settings)
    try:
        try:
            done = await record_death(runtime.uow, runtime.context, args.personal_id, args.died_on)
        except (InvalidInput, NotFound) as refused:
            console.print(f"[red]{refused.message}[/red] ({refused.reason})")
            return 1
        if done.newly_recorded:
            console.print(f"death recorded ({args.died_on.isoformat()})")
        else:
            console.print("the death was recorded already")
        if done.deactivated_account_id is None:
            console.print("no account to deactivate")
        else:
            console.print(
                f"account {done.deactivated_account_id} deactivated;"
                f" {done.revoked_sessions} session(s) ended"
            )
        return 0
    finally:
        await runtime.close()
