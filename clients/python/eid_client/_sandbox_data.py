"""What a :class:`~eid_client.sandbox.Sandbox` reads back: the demo registry
it loaded and the messages (SMS and email, codes included) its server wrote
to the outbox file instead of sending them."""

from __future__ import annotations

import csv
import datetime
import io
import json
import re
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

_CODE = re.compile(r"\b(\d{6})\b")


@dataclass(frozen=True)
class DemoCitizen:
    """A person in the sandbox's population registry, who may register."""

    personal_id: str
    full_name: str
    birth_date: datetime.date
    gender: str  # "male" or "female", as register() takes it


@dataclass(frozen=True)
class OutboxMessage:
    """One SMS or email the server "sent": ``to`` is the phone (E.164,
    ``+84912345678``) or the email address."""

    channel: str
    kind: str
    to: str
    subject: str
    body: str


def demo_citizens() -> list[DemoCitizen]:
    """The demo registry eid-server load-demo loads (the server's own file)."""
    text = resources.files("eid_service.data").joinpath("demo_citizens.csv").read_text("utf-8")
    return [
        DemoCitizen(
            personal_id=row["personal_id"],
            full_name=row["full_name"],
            birth_date=datetime.date.fromisoformat(row["birth_date"]),
            gender=row["gender"],
        )
        for row in csv.DictReader(io.StringIO(text))
    ]


def read_outbox(path: Path) -> list[OutboxMessage]:
    """The messages in the outbox file, oldest first. The server appends each
    as one line; a line it is still writing (no newline yet, perhaps cut in
    the middle of a character) is left for the next read."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:  # nothing sent yet
        return []
    messages = []
    for line in data[: data.rfind(b"\n") + 1].decode("utf-8").splitlines():
        raw = json.loads(line)
        messages.append(
            OutboxMessage(
                channel=raw.get("channel", ""),
                kind=raw.get("kind", ""),
                to=raw.get("to", ""),
                subject=raw.get("subject") or "",
                body=raw.get("body", ""),
            )
        )
    return messages


def same_destination(typed: str, stored: str) -> bool:
    """Whether the phone or email a test typed is the one a message went to
    (phones as typed, ``0912345678``, or in E.164, ``+84912345678``)."""
    typed = typed.strip().replace(" ", "")
    if "@" in typed:
        return typed.lower() == stored.lower()
    if typed.startswith("0"):
        typed = "+84" + typed[1:]
    return typed == stored


def wait_for_code(path: Path, to: str, *, after: int, timeout: float) -> str:
    """The 6-digit code in the newest message to ``to`` among the messages
    past the first ``after``, waiting up to ``timeout`` seconds for it (the
    outbox delivers just after the call that wrote it answers)."""
    deadline = time.monotonic() + timeout
    while True:
        for message in reversed(read_outbox(path)[after:]):
            found = _CODE.search(message.body)
            if found is not None and same_destination(to, message.to):
                return found.group(1)
        if time.monotonic() >= deadline:
            # The phone stays out of the message: errors end up in CI logs.
            raise LookupError(f"no message with a code to that phone or email within {timeout:g} s")
        time.sleep(0.05)
