"""How `eid-server party` shows relying parties: tables, status changes and
API keys. Names and contacts are escaped (rich would read `[...]` as markup)."""

from __future__ import annotations

from datetime import datetime, timedelta

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from eid_service.domain.party import PartyStatus, RelyingParty, scope_names
from eid_service.use_cases.context import utc_now
from eid_service.use_cases.parties import StatusChange
from eid_service.use_cases.party_cache import TTL_SECONDS
from eid_service.use_cases.ports import PartyRecord


def _at(when: datetime) -> str:
    return when.isoformat(timespec="seconds")


def duration(span: timedelta) -> str:
    """24h, 7d, 30m: as an operator writes it."""
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def scopes_text(party: RelyingParty) -> str:
    return ", ".join(scope_names(party.scopes, party.grants)) or "-"


def modes_text(party: RelyingParty) -> str:
    return ", ".join(sorted(m.value for m in party.modes))


def limits_text(party: RelyingParty) -> str:
    return f"{party.rate_per_minute}/min, {party.citizen_rate_per_minute}/min per citizen"


def client_cert_text(party: RelyingParty) -> str:
    """The SHA-256 a bound party's certificate must have, as openssl prints it."""
    if party.client_cert_sha256 is None:
        return "- (API key alone)"
    return f"sha256 {party.client_cert_sha256.hex(':').upper()} (mutual TLS required)"


def _status(record: PartyRecord) -> str:
    if record.party.status is PartyStatus.SUSPENDED and record.suspended_at is not None:
        return f"[red]suspended[/red] since {_at(record.suspended_at)}"
    return record.party.status.value


def _current_key(record: PartyRecord) -> str:
    """When the current key was made: a rotation refuses to replace one made
    by a rotation minutes ago, so the operator sees why (and whose it may be)."""
    if record.key_rotated_at is None:
        return "made when the party was created"
    return f"made by a rotation at {_at(record.key_rotated_at)}"


def _previous_key(record: PartyRecord, now: datetime) -> str:
    until = record.previous_key_expires_at
    if until is None:
        return "-"
    return f"works until {_at(until)}" if until > now else f"stopped at {_at(until)}"


def party_view(record: PartyRecord, done: str = "") -> Table:
    """One party, field by field (`done`: what just happened to it)."""
    p = record.party
    table = Table(title=f"Relying party {p.id} {done}".strip(), show_header=False)
    table.add_column("field", style="bold")
    # Folded, not cut: a certificate's fingerprint must be shown whole.
    table.add_column("value", overflow="fold")
    attributes = ", ".join(sorted(a.value for a in p.scopes)) or "-"
    for field, value in (
        ("id", p.id),
        ("name", escape(p.name)),
        ("status", _status(record)),
        ("contact", escape(p.contact) or "-"),
        ("scopes", f"{scopes_text(p)} ({attributes})"),
        ("modes", modes_text(p)),
        ("limits", limits_text(p)),
        ("created", _at(record.created_at)),
        ("current key", _current_key(record)),
        ("previous key", _previous_key(record, utc_now())),
        ("client certificate", client_cert_text(p)),
    ):
        table.add_row(field, value)
    return table


def party_table(records: list[PartyRecord]) -> Table:
    """One row a party, lists one item a line. Ids are never cut (operators
    copy them); on a narrow terminal the other columns fold."""
    table = Table(
        title=f"Relying parties ({len(records)})",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("id", no_wrap=True, min_width=19)
    for column in ("name", "status", "scopes", "modes", "limit/min\nparty/citizen", "created"):
        table.add_column(column, overflow="fold")
    for r in records:
        p = r.party
        table.add_row(
            p.id,
            escape(p.name),
            "[red]suspended[/red]" if p.status is PartyStatus.SUSPENDED else p.status.value,
            "\n".join(scope_names(p.scopes, p.grants)) or "-",
            "\n".join(sorted(m.value for m in p.modes)),
            f"{p.rate_per_minute}/{p.citizen_rate_per_minute}",
            r.created_at.date().isoformat(),
        )
    return table


def describe_change(change: StatusChange) -> str:
    p = change.record.party
    who = f"relying party {p.id} ({escape(p.name)})"
    if not change.changed:
        return f"{who} is {p.status.value} already: nothing changed"
    if p.status is PartyStatus.SUSPENDED:
        return (
            f"{who} suspended: its calls get PERMISSION_DENIED (PARTY_SUSPENDED) within"
            f" {TTL_SECONDS:g} s, until `eid-server party resume {p.id}`"
        )
    return f"{who} resumed: it is served again within {TTL_SECONDS:g} s"


def show_key(console: Console, api_key: str) -> None:
    console.print(
        "[yellow]API key, shown this once: store it now, it cannot be shown again[/yellow]"
        " (send it as the x-api-key header):"
    )
    # Bare on the last line, so scripts can take it (tail -n1).
    print(api_key, flush=True)
