"""`eid-server`: serve, migrate, load demo data and administer relying parties."""

from __future__ import annotations

import argparse
import asyncio
import os
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.exc import DBAPIError

from eid_service.app import Runtime, bootstrap
from eid_service.cli_audit import add_audit_commands, run_audit_command
from eid_service.cli_demo import add_demo_portrait_command, run_demo_portrait
from eid_service.cli_keys import add_keys_commands, run_keys_command
from eid_service.cli_outbox import OUTBOX_EXAMPLES, run_outbox_command
from eid_service.cli_parties import run_party_command
from eid_service.cli_party_args import add_party_commands
from eid_service.cli_registry import (
    add_registry_commands,
    after_interrupt,
    registry_needs_store,
    run_registry_command,
)
from eid_service.cli_rotate_keys import add_rotate_keys_command, run_rotate_keys
from eid_service.cli_values import whole_number
from eid_service.config import Settings
from eid_service.config_view import environment_lines, mask_url, settings_lines
from eid_service.demo import demo_citizens, demo_foreigners, demo_people
from eid_service.domain.errors import InvalidInput, Unavailable
from eid_service.domain.officer import DEFAULT_ROLES, OfficerRole, parse_roles
from eid_service.security.keys import (
    KeyRingUnreadable,
    generate_key_ring,
    load_key_ring,
    save_key_ring,
)
from eid_service.serve import configure_logging, serve
from eid_service.store.database import unreachable_reason
from eid_service.use_cases.context import utc_now
from eid_service.use_cases.ports import Repositories

EXAMPLES = """\
examples:
  eid-server init-dev                 create local keys (var/keys.json) if missing
  eid-server migrate                  create or upgrade the database schema
  eid-server load-demo                load the demo population registry
  eid-server load-demo --synthetic 5000
                                      ... plus 5000 synthetic adults, for load tests
  eid-server demo-portrait --id 001190791514 --out face.f32
                                      a face capture matching that demo person's enrolled
                                      portrait, for `eid register --portrait face.f32`
  eid-server serve --workers 2        serve on $EID_LISTEN (default 127.0.0.1:50051)
  eid-server config                   the effective settings, secrets masked
  eid-server party create --name "Demo Bank" --modes password,qr_share,one_time_code
                                      onboard a relying party; prints its API key once
                                      (party list|show|suspend|resume|rotate-key|delete)
  eid-server registry mark-deceased --id 001190791514 --date 2026-03-01
                                      the registry records a death: the account is
                                      deactivated at once (no sign-in, no Verify)
  eid-server officer create --name "Công an phường Bến Nghé, counter 2"
                                      a registration officer key (registers level 2, unlocks
                                      accounts; --roles unlock for fewer); shown once
  eid-server officer list             officers, their roles, enabled or disabled
  eid-server officer set-roles off_3f2a9c0d1e4b5a67 --roles registration,unlock
                                      what the officer may do from now on
  eid-server officer disable off_3f2a9c0d1e4b5a67
                                      that key stops working at once
  eid-server keys rotate              a new key signs QR shares; the old one verifies until
                                      what it signed expires (keys list, keys revoke KEY_ID)
  eid-server rotate-keys              a new key encrypts personal data at rest; every sealed
                                      field moves to it while serving (--remove-old after)
  eid-server outbox dead              deliveries given up on (no destination or text shown)
  eid-server outbox retry --all       send them again, once the gateway or relay is fixed
  eid-server audit verify             check the tamper-evident audit chains; exit 1 and a
                                      table of broken links if any (--json for monitoring)

settings (environment variables):
  EID_LISTEN         host:port to serve on (default 127.0.0.1:50051)
  EID_TLS_CERT_FILE, EID_TLS_KEY_FILE  serve TLS (PEM files); without them, an address
                     other than loopback needs EID_ALLOW_INSECURE=true
  EID_TLS_CLIENT_CA_FILE, EID_MTLS_LISTEN  mutual TLS for parties bound to a client
                     certificate (party client-cert), on a port of its own
  EID_DATABASE_URL   sqlite:///var/eid.db (default) or
                     postgresql://user@host:5432/dbname
  EID_KEYS_FILE      key ring file (default var/keys.json)
  EID_WORKERS        server processes sharing the port (default: CPU count)
  EID_OUTBOX_FILE    development "phone": messages, codes included, are appended here
                     (unset by default; `make run` sets var/outbox.log)
  EID_CONSOLE_SENDER development: also print messages to stdout (default false)
  EID_ENV            development (default) or production: no reflection unless
                     EID_REFLECTION=true, no development senders
  EID_REFLECTION     serve gRPC reflection (default true; false in production)
  EID_GRACE_SECONDS  how long in-flight calls may finish on SIGTERM (default 10)
  EID_TRUSTED_PROXIES  load balancers whose x-forwarded-for names the client (comma-separated IPs)
  EID_SMTP_HOST      email through this SMTP relay (with EID_SMTP_FROM; README: Senders)
  EID_SMS_WEBHOOK_URL  SMS through this gateway (with EID_SMS_WEBHOOK_SECRET)
  EID_CREDENTIAL_ISSUER  the `iss` of offline QR credentials (default eid.vn)
  EID_SHARE_MAX_TTL_SECONDS  the longest a QR share may live (default 86400)
  EID_SHARE_CLOCK_SKEW_SECONDS  clock skew allowed to verifiers (default 60)
  EID_PORTRAIT_MATCH_THRESHOLD  cosine similarity a level-1 registrant's portrait needs
                     with the enrolled one (default 0.60; 0.30 to below 1)
  EID_LOG_LEVEL      INFO by default
"""

# Commands that open the store: its fields are encrypted and its digests keyed.
NEEDS_KEYS = {
    "serve",
    "load-demo",
    "party",
    "officer",
    "outbox",
    "keys",
    "audit",
    "registry",
    "rotate-keys",
}


async def _load_demo(runtime: Runtime, synthetic: int, console: Console) -> None:
    citizens = demo_citizens()
    people = demo_people(synthetic)

    def put_all(r: Repositories) -> int:
        return sum(r.registry.put_person(p) for p in people)

    added = await runtime.uow.atomically(put_all, long=True)
    total = len(people)
    console.print(
        f"demo registry: {added} people added, {total - added} already there"
        " (each with an enrolled portrait: eid-server demo-portrait)"
    )
    table = Table(title="Some demo citizens (all synthetic) to register with")
    for column in ("personal_id", "full_name", "birth_date", "gender"):
        table.add_column(column)
    for c in citizens[:5]:
        table.add_row(c.personal_id, c.full_name, c.birth_date.isoformat(), c.gender.value)
    console.print(table)
    console.print("All of them: eid-server demo-citizens")


def _roles_text(roles: frozenset[OfficerRole]) -> str:
    return ", ".join(r.value for r in OfficerRole if r in roles)


def _roles(text: str) -> frozenset[OfficerRole]:
    try:
        return parse_roles(text)
    except InvalidInput as bad:
        raise argparse.ArgumentTypeError(bad.message) from None


async def _create_officer(
    runtime: Runtime, name: str, roles: frozenset[OfficerRole], console: Console
) -> int:
    try:
        officer, key = await runtime.uow.atomically(
            lambda r: r.officers.create(name, utc_now(), roles)
        )
    except InvalidInput as bad:
        console.print(f"[red]--name[/red]: {escape(bad.message)}")
        return 2
    # Escaped, as party names are: rich reads "[/]" in a name as markup and
    # raised before the key (already committed, shown only here) was printed.
    console.print(
        f"registration officer [bold]{officer.id}[/bold] ({escape(officer.name)}),"
        f" roles: {_roles_text(officer.roles)}"
    )
    console.print("key (shown once, store it now; send it as the x-officer-key header):")
    print(key)  # bare on its own line so scripts can capture it
    return 0


async def _disable_officer(runtime: Runtime, officer_id: str, console: Console) -> int:
    done = await runtime.uow.atomically(lambda r: r.officers.disable(officer_id, utc_now()))
    if not done:
        console.print(f"[red]no enabled officer has the id {escape(officer_id)}[/red]")
        return 1
    console.print(f"officer {officer_id} disabled: the key no longer works")
    return 0


async def _set_officer_roles(
    runtime: Runtime, officer_id: str, roles: frozenset[OfficerRole], console: Console
) -> int:
    done = await runtime.uow.atomically(lambda r: r.officers.set_roles(officer_id, roles))
    if not done:
        console.print(f"[red]no enabled officer has the id {escape(officer_id)}[/red]")
        return 1
    console.print(f"officer {officer_id} roles: {_roles_text(roles)} (from the next call on)")
    return 0


async def _list_officers(runtime: Runtime, console: Console) -> int:
    listed = await runtime.uow.atomically(lambda r: r.officers.list_all())
    if not listed:
        console.print("no officers yet: eid-server officer create --name ...")
        return 0
    table = Table(title="Registration officers")
    # Ids whole whatever the terminal's width: they are what set-roles and disable take.
    table.add_column("id", no_wrap=True)
    for column in ("name", "roles", "created", "state"):
        table.add_column(column)
    for entry in listed:
        state = (
            "enabled"
            if entry.disabled_at is None
            else f"disabled {entry.disabled_at.isoformat(timespec='seconds')}"
        )
        table.add_row(
            entry.officer.id,
            escape(entry.officer.name),
            _roles_text(entry.officer.roles),
            entry.created_at.isoformat(timespec="seconds"),
            state,
        )
    console.print(table)
    return 0


async def _with_runtime(settings: Settings, action: str, args: argparse.Namespace) -> int:
    """Runs one admin action with the runtime; its exit status."""
    console = Console()
    runtime = bootstrap(settings)
    try:
        if action == "load-demo":
            await _load_demo(runtime, args.synthetic, console)
        elif action == "officer-create":
            return await _create_officer(runtime, args.name, args.roles, console)
        elif action == "officer-list":
            return await _list_officers(runtime, console)
        elif action == "officer-disable":
            return await _disable_officer(runtime, args.officer_id, console)
        elif action == "officer-set-roles":
            return await _set_officer_roles(runtime, args.officer_id, args.roles, console)
    finally:
        await runtime.close()
    return 0


def _init_dev(settings: Settings, console: Console) -> int:
    if settings.keys_file.exists():
        console.print(f"keys: {settings.keys_file} exists, kept")
    elif settings.keys_file.is_symlink():
        # Dangling (planted or stale): never written through; save_key_ring's
        # link onto it ended in a FileExistsError traceback.
        console.print(
            f"[red]keys: {escape(str(settings.keys_file))} is a symlink to nothing[/red]:"
            " not followed; remove it, or set EID_KEYS_FILE",
            soft_wrap=True,
        )
        return 1
    else:
        save_key_ring(generate_key_ring(), settings.keys_file)
        console.print(f"keys: created {settings.keys_file} (development only; keep it out of git)")
    if settings.database_url.startswith("sqlite") and "///" in settings.database_url:
        db_path = Path(settings.database_url.split("///", 1)[1])
        db_path.parent.mkdir(parents=True, exist_ok=True)
    return 0


def _print_config(settings: Settings) -> None:
    for name, value in (*settings_lines(settings), *environment_lines(os.environ)):
        # Bytes of a variable that are not UTF-8 arrive as lone surrogates, which
        # a UTF-8 terminal's strict stdout refused mid-listing: shown as \xff.
        shown = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        print(f"{name} = {shown}")


def _print_demo_citizens(console: Console) -> None:
    table = Table(title="Demo population registry (synthetic)")
    for column in ("personal_id", "full_name", "birth_date", "gender", "age"):
        table.add_column(column)
    today = utc_now().date()
    for c in demo_citizens():
        age = (
            today.year
            - c.birth_date.year
            - ((today.month, today.day) < (c.birth_date.month, c.birth_date.day))
        )
        table.add_row(
            c.personal_id, c.full_name, c.birth_date.isoformat(), c.gender.value, str(age)
        )
    console.print(table)
    foreign = Table(title="Demo foreigners (synthetic): register with the passport")
    for column in ("assigned ID", "full_name", "birth_date", "gender", "passport"):
        foreign.add_column(column)
    for f in demo_foreigners():
        d, p = f.demographics, f.passport
        assert p is not None
        passport = f"{p.nationality} {p.number}, {p.issue_date.isoformat()}, {p.issue_place}"
        foreign.add_row(
            d.personal_id, d.full_name, d.birth_date.isoformat(), d.gender.value, passport
        )
    console.print(foreign)
    console.print("A matching portrait capture: eid-server demo-portrait --id ID --out face.f32")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eid-server",
        description="eid: a gRPC electronic-identity verification service.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve_cmd = commands.add_parser("serve", help="serve gRPC until SIGTERM/SIGINT")
    serve_cmd.add_argument("--listen", help="host:port (default $EID_LISTEN or 127.0.0.1:50051)")
    serve_cmd.add_argument("--workers", type=int, help="processes sharing the port (default: CPUs)")
    commands.add_parser("config", help="print the effective settings, secrets masked")
    commands.add_parser("migrate", help="create or upgrade the database schema")
    commands.add_parser("init-dev", help="create development keys and data folder if missing")
    load = commands.add_parser("load-demo", help="load the demo population registry (idempotent)")
    load.add_argument(
        "--synthetic",
        # All of them are made in memory first; a registry of millions is
        # `registry generate`'s work. A negative number did nothing, unsaid.
        type=whole_number(0, MAX_SYNTHETIC, out_of_range=SYNTHETIC_RANGE),
        default=0,
        metavar="N",
        help="also load N synthetic adults (for load tests: each Register needs its own citizen)",
    )
    commands.add_parser("demo-citizens", help="list the demo population registry")
    add_demo_portrait_command(commands)
    add_party_commands(commands)
    officer = commands.add_parser("officer", help="administer registration officers")
    officer_cmds = officer.add_subparsers(dest="officer_command", required=True, metavar="ACTION")
    hire = officer_cmds.add_parser(
        "create",
        help="create an officer who may register level 2 and unlock accounts; prints the key once",
    )
    hire.add_argument("--name", required=True, help="who and where, e.g. a police counter")
    hire.add_argument(
        "--roles",
        type=_roles,
        default=DEFAULT_ROLES,
        help="registration (level 2), unlock, or both (the default), comma-separated",
    )
    officer_cmds.add_parser(
        "list", help="every officer: id, name, roles, created, enabled or disabled (never keys)"
    )
    roles = officer_cmds.add_parser("set-roles", help="change what an officer may do")
    roles.add_argument("officer_id", metavar="OFFICER_ID", help="off_… (as create printed)")
    roles.add_argument(
        "--roles", type=_roles, required=True, help="registration, unlock, or both: comma-separated"
    )
    retire = officer_cmds.add_parser(
        "disable", help="stop an officer's key at once (a leaked key, a transfer)"
    )
    retire.add_argument("officer_id", metavar="OFFICER_ID", help="off_… (as create printed)")
    _add_outbox_commands(commands)
    add_keys_commands(commands)
    add_audit_commands(commands)
    add_registry_commands(commands)
    add_rotate_keys_command(commands)
    return parser


MAX_DEAD_LISTED = 100_000
MAX_SYNTHETIC = 200_000
SYNTHETIC_RANGE = f"0 to {MAX_SYNTHETIC:,} (more: eid-server registry generate --count N)"


# 0 or less listed nothing as if none were dead (or, on SQLite, -1 all of
# them); a huge one overflowed the driver (a traceback).
_dead_limit = whole_number(1, MAX_DEAD_LISTED)


def _message_id(text: str) -> str:
    # An empty one was answered "no dead delivery", as if it had been looked for.
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty message id (give one as `outbox dead` lists)")
    return text


def _add_outbox_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    outbox = commands.add_parser(
        "outbox",
        help="list and retry dead message deliveries",
        description="Deliveries that failed every attempt (or were refused for good) are dead.",
        epilog=OUTBOX_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = outbox.add_subparsers(dest="outbox_command", required=True, metavar="ACTION")
    dead = actions.add_parser(
        "dead",
        help="list dead deliveries: id, kind, channel, sender, attempts, last error, created",
        epilog=OUTBOX_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dead.add_argument(
        "--limit", type=_dead_limit, default=1000, help="at most this many (default 1000)"
    )
    retry = actions.add_parser(
        "retry",
        help="make dead deliveries pending again (attempts from 0)",
        epilog=OUTBOX_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    retry.add_argument(
        "message_ids", nargs="*", type=_message_id, metavar="MESSAGE_ID", help="msg_… (as listed)"
    )
    retry.add_argument("--all", action="store_true", help="every dead delivery that can be")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console()
    try:
        settings = Settings.from_env()
        configure_logging()
    except ValueError as bad:
        console.print(f"[red]bad settings[/red]: {bad}")
        return 2
    needs_keys = args.command in NEEDS_KEYS
    if args.command == "registry":
        needs_keys = registry_needs_store(args)
    if needs_keys and not settings.keys_file.exists():
        console.print(
            f"[red]no key ring at {settings.keys_file}[/red]: run `eid-server init-dev` for "
            "development keys, or set EID_KEYS_FILE"
        )
        return 2
    if needs_keys:
        try:  # here, once, not as a traceback from whichever command reads it
            load_key_ring(settings.keys_file)
        except KeyRingUnreadable as bad:
            console.print(f"[red]cannot use the key ring[/red] {escape(str(bad))}", soft_wrap=True)
            return 2
    if args.command == "serve":
        if args.listen:
            settings = replace(settings, listen=args.listen)
        if args.workers:
            settings = replace(settings, workers=args.workers)
        return serve(settings)
    try:
        return _run(settings, args, console)
    except KeyboardInterrupt:  # Ctrl-C: what to do next, not asyncio's traceback
        console.print(f"[yellow]interrupted[/yellow]: {_after_interrupt(args)}")
        return 130
    except (DBAPIError, Unavailable) as down:  # not running, wrong address, no such file
        where = escape(mask_url(settings.database_url))
        console.print(
            f"[red]the database cannot be reached[/red] at {where} ({unreachable_reason(down)})",
            soft_wrap=True,
        )
        return 1


def _after_interrupt(args: argparse.Namespace) -> str:
    if args.command == "registry":
        return after_interrupt(args)
    if args.command == "rotate-keys" and not args.status:
        # Pages commit as they go and what is due is read from the data.
        return "what moved so far stays; `eid-server rotate-keys --resume` finishes it"
    return "nothing was recorded unless it said so"


def _run(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    """Every command but serve; its exit status."""
    if args.command == "config":
        _print_config(settings)
    elif args.command == "migrate":
        # Here, not at the top: a server (this process, with one worker) never needs Alembic.
        from eid_service.store.migrate import MigrationBlocked, upgrade

        try:
            upgrade(settings.database_url, on_wait=console.print)
        except MigrationBlocked as blocked:
            console.print(f"[red]not migrated[/red]: {escape(str(blocked))}", soft_wrap=True)
            return 1
        console.print("database schema is up to date")
    elif args.command == "init-dev":
        return _init_dev(settings, console)
    elif args.command == "demo-citizens":
        _print_demo_citizens(console)
    elif args.command == "demo-portrait":
        return run_demo_portrait(settings, args, console)
    elif args.command == "load-demo":
        asyncio.run(_with_runtime(settings, "load-demo", args))
    elif args.command == "party":
        return asyncio.run(run_party_command(settings, args, console))
    elif args.command == "officer":
        return asyncio.run(_with_runtime(settings, f"officer-{args.officer_command}", args))
    elif args.command == "outbox":
        return asyncio.run(run_outbox_command(settings, args, console))
    elif args.command == "keys":
        return asyncio.run(run_keys_command(settings, args, console))
    elif args.command == "audit":
        return asyncio.run(run_audit_command(settings, args, console))
    elif args.command == "registry":
        return asyncio.run(run_registry_command(settings, args, console))
    elif args.command == "rotate-keys":
        return asyncio.run(run_rotate_keys(settings, args, console))
    return 0
