"""`eid-server party`: relying parties onboarded, listed, shown, suspended,
resumed, deleted and given new API keys by an operator. An API key is
printed once, bare on the last line of stdout (scripts take it with
`tail -n1`); only its keyed digest is stored."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable

from rich.console import Console
from rich.markup import escape

from eid_service.app import Runtime, bootstrap
from eid_service.cli_party_views import (
    client_cert_text,
    describe_change,
    duration,
    party_table,
    party_view,
    scopes_text,
    show_key,
)
from eid_service.config import Settings
from eid_service.config_view import mask_url
from eid_service.domain.errors import InvalidInput, NotFound, PreconditionFailed
from eid_service.use_cases import parties, party_webhooks
from eid_service.use_cases.pages import MAX_PAGE_SIZE
from eid_service.use_cases.party_cache import TTL_SECONDS

_TTL = f"{TTL_SECONDS:g} s"
_OPTION_OF_FIELD = {
    "name": "--name",
    "contact": "--contact",
    "scopes": "--scopes",
    "modes": "--modes",
    "rate_per_minute": "--rate-limit",
    "citizen_rate_per_minute": "--citizen-rate-limit",
    "overlap": "--overlap",
    "party_id": "PARTY_ID",
    "url": "--url",
}
Action = Callable[[Runtime, argparse.Namespace, Console], Awaitable[int]]


async def _create(runtime: Runtime, args: argparse.Namespace, console: Console) -> int:
    cmd = parties.NewParty(
        args.name,
        args.scopes,
        args.contact,
        args.modes,
        args.rate_limit,
        args.citizen_rate_limit,
        args.client_cert,
        args.grants,
    )
    created = await parties.create_party(runtime.uow, runtime.context, cmd)
    console.print(party_view(created.record, "created"))
    show_key(console, created.api_key)
    return 0


async def _list(runtime: Runtime, args: argparse.Namespace, console: Console) -> int:
    records, token = [], ""
    while True:
        page = await parties.list_parties(runtime.uow, MAX_PAGE_SIZE, token)
        records.extend(page.parties)
        token = page.next_page_token
        if not token:
            break
    console.print(party_table(records))
    return 0


async def _show(runtime: Runtime, args: argparse.Namespace, console: Console) -> int:
    console.print(party_view(await parties.show_party(runtime.uow, args.party_id)))
    return 0


async def _suspend(runtime: Runtime, args: argparse.Namespace, console: Console) -> int:
    change = await parties.suspend_party(runtime.uow, runtime.context, args.party_id)
    console.print(describe_change(change))
    return 0


async def _resume(runtime: Runtime, args: argparse.Namespace, console: Console) -> int:
    change = await parties.resume_party(runtime.uow, runtime.context, args.party_id)
    console.print(describe_change(change))
    return 0


async def _set_limits(runtime: Runtime, args: argparse.Namespace, console: Console) -> int:
    if args.rate_limit is None and args.citizen_rate_limit is None:
        console.print("[red]nothing to change[/red]: give --rate-limit and/or --citizen-rate-limit")
        return 2
    record = await parties.set_party_limits(
        runtime.uow, args.party_id, args.rate_limit, args.citizen_rate_limit
    )
    party = record.party
    console.print(
        f"rate limits of {party.id}: {party.rate_per_minute} calls a minute,"
        f" {party.citizen_rate_per_minute} about one citizen (servers: within {_TTL})"
    )
    return 0


async def _set_scopes(runtime: Runtime, args: argparse.Namespace, console: Console) -> int:
    record = await parties.set_party_scopes(runtime.uow, args.party_id, args.scopes, args.grants)
    console.print(
        f"scopes of {record.party.id}: {scopes_text(record.party)} (servers: within {_TTL})"
    )
    return 0


async def _delete(runtime: Runtime, args: argparse.Namespace, console: Console) -> int:
    if not args.yes:
        if not sys.stdin.isatty():
            console.print("[red]not deleted[/red]: confirm with --yes (stdin is not a terminal)")
            return 2
        party = (await parties.show_party(runtime.uow, args.party_id)).party
        answer = console.input(
            f"Delete [bold]{party.id}[/bold] ({escape(party.name)})? Its API keys stop working"
            f" within {_TTL}; this cannot be undone. Type yes to delete: "
        )
        if answer.strip().lower() != "yes":
            console.print("not deleted")
            return 1
    gone = await parties.delete_party(runtime.uow, runtime.context, args.party_id)
    console.print(
        f"relying party {gone.party.id} ({escape(gone.party.name)}) deleted: its API keys"
        f" stop working within {_TTL}"
    )
    return 0


async def _rotate_key(runtime: Runtime, args: argparse.Namespace, console: Console) -> int:
    rotated = await parties.rotate_party_key(
        runtime.uow, runtime.context, args.party_id, args.overlap, force=args.force
    )
    until = rotated.old_key_expires_at.isoformat(timespec="seconds")
    if args.overlap:
        console.print(f"the old API key keeps working until {until} ({duration(args.overlap)})")
    else:
        console.print(f"the old API key stops working now (servers: within {_TTL})")
    if rotated.cut_short:
        console.print("[yellow]the key an earlier rotation replaced stopped working now[/yellow]")
    show_key(console, rotated.api_key)
    return 0


async def _webhook(runtime: Runtime, args: argparse.Namespace, console: Console) -> int:
    party_id = args.party_id
    if args.clear:
        had = await party_webhooks.clear_webhook(runtime.uow, party_id)
        console.print(
            f"status webhook of {party_id} removed: events not yet sent will not be delivered"
            if had
            else f"{party_id} had no status webhook"
        )
        return 0
    if args.url is not None:
        hook = await party_webhooks.set_webhook(runtime.uow, runtime.context, party_id, args.url)
        # Masked as `config` masks URLs: a query may carry the party's token,
        # and terminals and CI logs keep what is printed.
        console.print(f"status events of {party_id} now go to {escape(mask_url(hook.url))}")
        return 0
    shown = await party_webhooks.show_webhook(runtime.uow, party_id)
    if shown is None:
        console.print(f"{party_id} has no status webhook (set one with --url)")
    else:
        at = shown.updated_at.isoformat(timespec="seconds")
        console.print(f"status webhook of {party_id}: {escape(mask_url(shown.url))} (set {at})")
    return 0


async def _client_cert(runtime: Runtime, args: argparse.Namespace, console: Console) -> int:
    if args.client_cert is None and not args.clear:
        party = (await parties.show_party(runtime.uow, args.party_id)).party
        text = f"client certificate of {party.id}: {client_cert_text(party)}"
        console.print(text, soft_wrap=True)
        return 0
    record = await parties.bind_client_certificate(runtime.uow, args.party_id, args.client_cert)
    party = record.party
    if party.client_cert_sha256 is None:
        console.print(
            f"{party.id} is no longer bound to a client certificate (servers: within {_TTL})"
        )
    else:
        console.print(
            f"{party.id} is bound to the client certificate with"
            f" {client_cert_text(party)}: its calls without it are refused (servers: within"
            f" {_TTL})",
            soft_wrap=True,
        )
    return 0


_ACTIONS: dict[str, Action] = {
    "create": _create,
    "list": _list,
    "show": _show,
    "suspend": _suspend,
    "resume": _resume,
    "set-limits": _set_limits,
    "set-scopes": _set_scopes,
    "delete": _delete,
    "rotate-key": _rotate_key,
    "webhook": _webhook,
    "client-cert": _client_cert,
}


async def run_party_command(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    """0 done, 1 no such party, refused (a key rotated minutes ago) or not
    confirmed, 2 invalid input."""
    runtime = bootstrap(settings)
    try:
        return await _ACTIONS[args.party_command](runtime, args, console)
    except NotFound as missing:
        console.print(f"[red]{escape(missing.message)}[/red] (see eid-server party list)")
        return 1
    except PreconditionFailed as refused:
        # One line, whatever the terminal's width: it names --force.
        console.print(f"[red]{escape(refused.message)}[/red]", soft_wrap=True)
        return 1
    except InvalidInput as bad:
        for v in bad.violations:
            option = _OPTION_OF_FIELD.get(v.field, v.field)
            console.print(f"[red]{option}[/red]: {escape(v.description)}")
        return 2
    finally:
        await runtime.close()
