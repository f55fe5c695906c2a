"""`eid-server outbox`: dead deliveries, listed and retried by an operator.

The listing shows what a delivery was (id, kind, channel, sender, attempts,
last error class, when) and never to whom or what it said."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from eid_service.app import bootstrap
from eid_service.config import Settings
from eid_service.notify.dead_letters import list_dead, retry_all_dead, retry_dead
from eid_service.use_cases.context import utc_now
from eid_service.use_cases.ports import DeadLetter, RetryOutcome

OUTBOX_EXAMPLES = """\
examples:
  eid-server outbox dead                      list dead deliveries
  eid-server outbox retry msg_3f2a9c0d1e4b5a67
                                              send that message again through its dead senders
  eid-server outbox retry --all               every dead delivery that still has its contents

A delivery dies after EID_OUTBOX_MAX_ATTEMPTS failures (default 8), or at once when
the receiver refuses it for good (an HTTP 4xx, an SMTP 5xx). A dead one-time code
(activation, lock, unlock) is erased at once and cannot be retried: it has expired
by then, and the citizen asks for a new code. Running servers pick retried
deliveries up within a second.
"""

_OUTCOME_TEXT = {
    RetryOutcome.RETRIED: "pending again",
    RetryOutcome.NOT_DEAD: "no dead delivery (unknown, sent or pending)",
    RetryOutcome.ERASED: "not retried: a one-time code, erased (the citizen asks for a new one)",
}


def dead_table(letters: list[DeadLetter]) -> Table:
    table = Table(title=f"Dead deliveries ({len(letters)})")
    for column in (
        "id",
        "kind",
        "channel",
        "sender",
        "attempts",
        "last error",
        "created",
        "retry",
    ):
        table.add_column(column, no_wrap=column == "id")
    for d in letters:
        table.add_row(
            d.message_id,
            d.kind.value if d.kind is not None else "-",
            d.channel,
            d.sender,
            str(d.attempts),
            d.last_error or "-",
            d.created_at.isoformat(timespec="seconds"),
            "yes" if d.retriable else "no (erased)",
        )
    return table


async def run_outbox_command(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    if args.outbox_command == "retry" and bool(args.message_ids) == bool(args.all):
        console.print("[red]name message ids or --all[/red] (see eid-server outbox retry --help)")
        return 2
    runtime = bootstrap(settings)
    try:
        if args.outbox_command == "dead":
            console.print(dead_table(await list_dead(runtime.uow, args.limit)))
            return 0
        if args.all:
            outcomes = await retry_all_dead(runtime.uow, utc_now())
        else:
            outcomes = await retry_dead(runtime.uow, args.message_ids, utc_now())
        for message_id, outcome in outcomes.items():
            # As the operator typed it: escaped, or "[/]" in it crashed the command.
            console.print(f"{escape(message_id)}: {_OUTCOME_TEXT[outcome]}")
        retried = sum(o is RetryOutcome.RETRIED for o in outcomes.values())
        console.print(f"{retried} message(s) pending again")
        return 0 if args.all or retried == len(outcomes) else 1
    finally:
        await runtime.close()
