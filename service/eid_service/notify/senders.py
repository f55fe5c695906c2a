"""Where outgoing messages go. Development senders print them and append them
to a file (the "phone" a developer reads the activation code from); SMTP
(smtp.py) and an SMS gateway webhook (webhook.py) deliver them for real.

Each sender has a route: a stable name, under which the outbox records its
deliveries, and the channels it takes ("sms", "email"; "party_webhook" is
the relying parties' status events, notify/party_webhook.py)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TextIO

from eid_service.domain.contact import mask_phone
from eid_service.notify.settings import DeliverySettings
from eid_service.use_cases.ports import OutgoingMessage
from eid_service.use_cases.status_events import STATUS_EVENT_CHANNEL

SMS = "sms"
EMAIL = "email"
# The citizen's channels (what a sender takes unless told otherwise).
ALL_CHANNELS = frozenset({SMS, EMAIL})
# Relying parties' status events, sent by the party webhook route alone.
PARTY_WEBHOOK = STATUS_EVENT_CHANNEL
ROUTED_CHANNELS = ALL_CHANNELS | {PARTY_WEBHOOK}


class Sender(Protocol):
    async def send(self, message: OutgoingMessage) -> None:
        """Delivers or raises (notify.failures.Undeliverable when retrying
        cannot help); `message.id` goes with it as the idempotency key."""
        ...


@dataclass(frozen=True)
class Route:
    """A sender, the name its deliveries are stored under, and its channels;
    `delivery`, when given, is its own retry schedule (else the outbox's)."""

    name: str
    channels: frozenset[str]
    sender: Sender
    delivery: DeliverySettings | None = None


def routes_of(senders: Iterable[Sender | Route]) -> list[Route]:
    """Routes as given; a bare sender (tests) takes every channel under its
    class name. Names are unique: they key the stored deliveries."""
    routes = [
        s if isinstance(s, Route) else Route(type(s).__name__.lower(), ALL_CHANNELS, s)
        for s in senders
    ]
    names = [r.name for r in routes]
    if len(set(names)) != len(names):
        raise ValueError(f"sender names must be unique: {names}")
    return routes


class ConsoleSender:
    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    async def send(self, message: OutgoingMessage) -> None:
        stream = self._stream or sys.stdout
        to = mask_phone(message.destination) if message.channel == SMS else "email"
        stream.write(f"[{message.channel} to {to}] {message.body}\n")
        stream.flush()


class FileSender:
    """One JSON object per line; each line is written with one O_APPEND write,
    so several worker processes can share the file."""

    def __init__(self, path: Path) -> None:
        self._path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    async def send(self, message: OutgoingMessage) -> None:
        line = json.dumps(
            {
                "time": datetime.now(UTC).isoformat(timespec="seconds"),
                "id": message.id,
                "channel": message.channel,
                "kind": message.kind.value,
                "to": message.destination,
                "subject": message.subject,
                "body": message.body,
            },
            ensure_ascii=False,
        )
        fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\n").encode("utf-8"))
        finally:
            os.close(fd)
