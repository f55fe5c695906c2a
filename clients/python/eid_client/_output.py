"""How the ``eid`` CLI prints: rich tables for people, JSON for scripts.

Results go to stdout; hints and errors go to stderr so that stdout can be piped
(``--json | jq``, ``$(eid signin ...)``).
"""

from __future__ import annotations

import datetime
import json
import shlex
import sys
import unicodedata
from collections.abc import Callable

from google.protobuf import json_format, timestamp_pb2
from google.protobuf.message import Message
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Column, Table
from rich.text import Text

from eid.v1 import identity_service_pb2 as pb
from eid_client.errors import EidError

Rows = list[tuple[str, str]]

# Controls (C0, DEL, C1), format characters (BiDi overrides, zero-width) and line or
# paragraph separators: what a terminal acts on or draws as nothing.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def terminal_safe(text: str) -> str:
    """``text`` with every character a terminal would act on or hide written as a
    visible escape (``\\x1b``, ``\\u202e``): server-sent text (a party's name, an
    approval note, an error message) must not move the cursor over an earlier
    line, write the clipboard, make links or reorder what the reader sees."""
    if text.isprintable():  # the common case, and faster than a character loop
        return text
    return "".join(
        ch.encode("unicode_escape").decode("ascii")
        if unicodedata.category(ch) in _UNSAFE_CATEGORIES
        else ch
        for ch in text
    )


def shell_word(value: str) -> str:
    """``value`` as one POSIX shell word, quoted only when it needs it, for the
    commands the CLI suggests next: people paste them, and a value from the
    server (an id, a code, a page token) must not bring a ``$(...)`` or a ``;``."""
    return shlex.quote(value)


def _json_escaped(text: str) -> str:
    """``text`` with the characters terminal_safe escapes, bar line ends, written as
    JSON escapes (``\\u202e``). Outside strings JSON holds none of them, and inside
    one the escape means the same character: JSON printed with ensure_ascii=False
    (verify-qr's Vietnamese names) stays the same document, safe on a terminal."""
    if text.replace("\n", "").isprintable():  # the common case
        return text
    return "".join(
        json.dumps(ch)[1:-1]
        if ch != "\n" and unicodedata.category(ch) in _UNSAFE_CATEGORIES
        else ch
        for ch in text
    )


def party_label(name: str, party_id: str) -> str:
    """A relying party as a citizen reads it: by its id as well as its name,
    which the party chose itself and may have chosen like another's."""
    return f"{name} ({party_id})" if name else party_id


class Output:
    """The CLI's two streams, and whether results are printed as JSON."""

    def __init__(self, *, as_json: bool) -> None:
        self.as_json = as_json
        # highlight=False: never colour parts of names or IDs as if they were numbers.
        self.stdout = Console(highlight=False)
        self.stderr = Console(stderr=True, highlight=False)

    def result(self, message: Message, title: str, rows: Rows) -> None:
        """Print a response: as JSON with ``--json``, else as a two-column table."""
        if self.as_json:
            self.json(message)
        else:
            self.table(title, rows)

    def json(self, message: Message) -> None:
        # Print defaults too: a script must see "verified": false, not a missing key.
        text = json_format.MessageToJson(
            message,
            always_print_fields_with_no_presence=True,
            preserving_proto_field_name=True,
            indent=2,
        )
        self.raw(text)

    def json_object(self, value: dict[str, str]) -> None:
        self.raw(json.dumps(value, indent=2))

    def table(self, title: str, rows: Rows) -> None:
        table = Table(title=title, show_header=False, title_justify="left")
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for key, value in rows:
            # Text(), not str: user data such as "[b]" must not be read as rich markup.
            table.add_row(Text(terminal_safe(key)), Text(terminal_safe(value)))
        self.stdout.print(table)

    def grid(
        self,
        title: str,
        columns: Callable[[], list[Column]],
        rows: list[list[str]],
        caption: str = "",
        *,
        heading_cells: int = 1,
    ) -> None:
        """A table with a header row, e.g. one line per session. Too wide for the
        terminal, each row is printed as a record instead, headed by its first
        ``heading_cells`` cells, so that nothing is cut. ``columns`` makes fresh
        columns (a rich Column keeps the cells of the table it is in)."""

        def build(keep: bool = True) -> Table:
            fresh = columns()
            table = Table(
                *fresh,
                title=title,
                title_justify="left",
                # Text, not str: a caption may name what a server sent (the keys' issuer).
                caption=Text(terminal_safe(caption), style="table.caption") if caption else None,
                caption_justify="left",
                box=box.SIMPLE_HEAD,
            )
            for row in rows:
                # keep=False: only the cells that cannot wrap, to measure the least width.
                cells = [
                    c if keep or col.no_wrap else "" for col, c in zip(fresh, row, strict=True)
                ]
                table.add_row(*(Text(terminal_safe(cell)) for cell in cells))
            return table

        unbounded = self.stdout.options.update_width(10_000)
        if Measurement.get(self.stdout, unbounded, build(keep=False)).maximum <= self.stdout.width:
            self.stdout.print(build())
            return
        top = f"{title} ({caption})" if caption else title
        self.stdout.print(Text(terminal_safe(top), style="italic"))
        for row in rows:
            heading = " ".join(cell for cell in row[:heading_cells] if cell)
            self.stdout.print(Text(terminal_safe(heading), style="bold"), soft_wrap=True)
            record = Table(show_header=False, box=None, padding=(0, 1, 0, 2))
            record.add_column(style="bold")
            record.add_column(overflow="fold")
            headers = [str(c.header) for c in columns()]
            for header, cell in zip(headers[heading_cells:], row[heading_cells:], strict=True):
                record.add_row(header, Text(terminal_safe(cell)))
            self.stdout.print(record)

    def raw(self, text: str) -> None:
        """Print unwrapped, e.g. tokens that must survive copy and paste, or JSON."""
        sys.stdout.write(_json_escaped(text) + "\n")
        sys.stdout.flush()

    def hint(self, text: str) -> None:
        if not self.as_json:
            self.stderr.print(Text(terminal_safe(text), style="dim"))

    def error(self, text: str) -> None:
        self.stderr.print(Text(terminal_safe(text)), soft_wrap=True)

    def eid_error(self, e: EidError) -> None:
        self.error(f"error: {e}")
        for field, description in e.field_violations:
            self.error(f"  {field}: {description}")


def when(ts: timestamp_pb2.Timestamp) -> str:
    """A timestamp in local time with its UTC offset, or "-" when unset."""
    if ts.seconds == 0 and ts.nanos == 0:
        return "-"
    utc = ts.ToDatetime(tzinfo=datetime.UTC)
    return utc.astimezone().isoformat(timespec="seconds")


def _enum(name: str, prefix: str) -> str:
    short = name.removeprefix(prefix)
    return "-" if short == "UNSPECIFIED" else short


def state(value: pb.AccountState.ValueType) -> str:
    return _enum(pb.AccountState.Name(value), "ACCOUNT_STATE_")


def level(value: pb.AccountLevel.ValueType) -> str:
    return _enum(pb.AccountLevel.Name(value), "ACCOUNT_LEVEL_")


def attribute(value: pb.Attribute.ValueType) -> str:
    return _enum(pb.Attribute.Name(value), "ATTRIBUTE_").lower()


def account_rows(account: pb.Account) -> Rows:
    return [
        ("Account ID", account.account_id),
        ("State", state(account.state)),
        ("Level", level(account.level)),
    ]


def delivery_rows(delivery: pb.ActivationDelivery) -> Rows:
    channel = _enum(pb.DeliveryChannel.Name(delivery.channel), "DELIVERY_CHANNEL_")
    return [
        ("Code sent to", f"{channel} {delivery.masked_destination}".strip()),
        ("Code expires", when(delivery.expire_time)),
    ]


def register_rows(response: pb.RegisterResponse) -> Rows:
    # The username to activate and sign in with (a foreigner's assigned number).
    username = [("Personal ID", response.personal_id)] if response.personal_id else []
    return [*username, *account_rows(response.account), *delivery_rows(response.delivery)]


def lock_rows(response: pb.LockAccountResponse) -> Rows:
    return [
        *account_rows(response.account),
        ("Newly locked", "yes" if response.newly_locked else "no (it already was)"),
    ]


def unlock_rows(response: pb.UnlockAccountResponse) -> Rows:
    return account_rows(response.account)


CURRENT_MARK = "*"


def session_columns() -> list[Column]:
    return [
        _fixed(""),
        _fixed("Session ID"),
        Column("Device", overflow="fold", ratio=1, min_width=14),
        _fixed("Signed in"),
        _fixed("Last used"),
        _fixed("Expires"),
    ]


def _fixed(header: str) -> Column:
    # IDs and times never wrap (an ID is copied into revoke-session); device names may.
    return Column(header, no_wrap=True, overflow="ignore")


def short_when(ts: timestamp_pb2.Timestamp) -> str:
    """A timestamp in local time to the minute, for tables, or "-" when unset."""
    if ts.seconds == 0 and ts.nanos == 0:
        return "-"
    return ts.ToDatetime(tzinfo=datetime.UTC).astimezone().strftime("%Y-%m-%d %H:%M")


def local_zone() -> str:
    """The local UTC offset, e.g. "UTC+07:00", for a table's caption."""
    offset = datetime.datetime.now().astimezone().strftime("%z")
    return f"UTC{offset[:3]}:{offset[3:]}" if offset else "UTC"


def session_cells(session: pb.Session) -> list[str]:
    """One row of `eid sessions`, the first cell marking the session making the call."""
    return [
        CURRENT_MARK if session.current else "",
        session.session_id,
        session.device_name or "-",
        short_when(session.create_time),
        short_when(session.last_use_time),
        short_when(session.expire_time),
    ]


def activate_rows(response: pb.ActivateResponse) -> Rows:
    return [*account_rows(response.account), ("Activated", when(response.account.activate_time))]


def verify_rows(response: pb.VerifyResponse) -> Rows:
    method = _enum(pb.VerificationMethod.Name(response.method), "VERIFICATION_METHOD_")
    rows: Rows = [
        ("Verified", "yes" if response.verified else "no"),
        ("Method", method),
        ("Level", level(response.level)),
        ("Subject", response.subject or "-"),
    ]
    released = _released(response.attributes)
    rows.extend(released or [("Attributes released", "none")])
    rows.append(("Verification ID", response.verification_id or "-"))
    rows.append(("Verified at", when(response.verify_time)))
    return rows


def _released(attributes: pb.CitizenAttributes) -> Rows:
    # A field is set only when it was released to this party (see the proto).
    rows: Rows = []
    if attributes.personal_id:
        rows.append(("Personal ID", attributes.personal_id))
    if attributes.full_name:
        rows.append(("Full name", attributes.full_name))
    if attributes.birth_date:
        rows.append(("Birth date", attributes.birth_date))
    if attributes.gender != pb.GENDER_UNSPECIFIED:
        rows.append(("Gender", _enum(pb.Gender.Name(attributes.gender), "GENDER_").lower()))
    if attributes.phone_number:
        rows.append(("Phone number", attributes.phone_number))
    if attributes.email:
        rows.append(("Email", attributes.email))
    if attributes.nationality:
        rows.append(("Nationality", attributes.nationality))
    for document in attributes.documents:
        rows.append((document_type(document.type), document_summary(document)))
    return rows


def document_type(value: pb.DocumentType.ValueType) -> str:
    """ "Tax code", "Driving licence"... for a DocumentType."""
    return _enum(pb.DocumentType.Name(value), "DOCUMENT_TYPE_").replace("_", " ").capitalize()


def document_summary(document: pb.LinkedDocument) -> str:
    """The number, the issuer and the validity, on one line."""
    until = document.valid_until or "no end"
    return f"{document.number} ({document.issuer}; valid {document.valid_from} to {until})"
