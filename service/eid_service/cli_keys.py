"""`eid-server keys`: the keys that sign QR share payloads, listed, rotated
and revoked by an operator. Running servers see a change within
KEY_CACHE_TTL_SECONDS; private keys are never shown."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from eid_service.app import bootstrap
from eid_service.config import Settings
from eid_service.domain.errors import NotFound
from eid_service.use_cases.context import utc_now
from eid_service.use_cases.signing_keys import (
    KEY_CACHE_TTL_SECONDS,
    PublishedKeys,
    ensure_signing_key,
    published_keys,
    revoke_signing_key,
    rotate_signing_key,
)

KEYS_EXAMPLES = f"""\
examples:
  eid-server keys list              current, retired and revoked keys, as verifiers see them
  eid-server keys rotate            a new current key; what the old one signed verifies
                                    until it expires (EID_SHARE_MAX_TTL_SECONDS at most)
  eid-server keys revoke kq7m2x     compromise: nothing that key signed verifies any more
                                    (a new current key takes over if it was current)

Servers pick a change up within {KEY_CACHE_TTL_SECONDS:g} seconds. Offline verifiers learn of a
revocation only when they fetch the keys again (eid keys --refresh).
"""


def keys_table(published: PublishedKeys) -> Table:
    table = Table(title=f"Share-signing keys (issuer {published.issuer})")
    for column in ("key id", "state", "since", "verifies until", "public key (hex)"):
        table.add_column(column, no_wrap=True)
    for key in published.keys:
        until = "-" if key.not_after is None else key.not_after.isoformat(timespec="seconds")
        table.add_row(
            key.record.key_id,
            key.record.state.value,
            key.record.created_at.isoformat(timespec="seconds"),
            until,
            key.record.public_key.hex(),
        )
    return table


def add_keys_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = commands.add_parser(
        "keys",
        help="list, rotate and revoke the keys that sign QR shares",
        description="Ed25519 keys that sign QR share payloads (online and offline).",
        epilog=KEYS_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    for name, text in (
        ("list", "the published keys: id, state, since, verifies until, public key"),
        ("rotate", "make a new current key; the old one retires"),
    ):
        actions.add_parser(
            name,
            help=text,
            epilog=KEYS_EXAMPLES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    revoke = actions.add_parser(
        "revoke",
        help="revoke a key (compromise): what it signed stops verifying",
        epilog=KEYS_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    revoke.add_argument("key_id", metavar="KEY_ID", help="as `eid-server keys list` shows it")


async def run_keys_command(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    runtime = bootstrap(settings)
    uow, cache = runtime.uow, runtime.context.signing_keys
    try:
        await ensure_signing_key(uow, dict(runtime.key_ring.signing_keys), utc_now())
        if args.keys_command == "rotate":
            key_id = await rotate_signing_key(uow, utc_now())
            console.print(f"new current key [bold]{key_id}[/bold]")
        elif args.keys_command == "revoke":
            try:
                successor = await revoke_signing_key(uow, args.key_id, utc_now())
            except NotFound:
                # As typed: escaped, or "[/]" in it crashed the command (found in review).
                console.print(f"[red]no unrevoked key has the id {escape(args.key_id)}[/red]")
                return 1
            console.print(f"key {escape(args.key_id)} revoked")
            if successor is not None:
                console.print(f"new current key [bold]{successor}[/bold]")
        cache.forget()
        console.print(keys_table(await published_keys(uow, cache, utc_now())))
        return 0
    finally:
        await runtime.close()
