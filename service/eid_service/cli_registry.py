"""`eid-server registry`: what a population-registry operator records. Today
one thing: a citizen's death, which deactivates their account at once
(use_cases/deceased.py)."""

from __future__ import annotations

import argparse
from datetime import date

from rich.console import Console

from eid_service.app import bootstrap
from eid_service.config import Settings
from eid_service.domain.errors import InvalidInput, NotFound
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
"""


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def add_registry_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    registry = commands.add_parser(
        "registry",
        help="record changes in the population registry (a citizen's death)",
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


async def run_registry_command(
    settings: Settings, args: argparse.Namespace, console: Console
) -> int:
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
