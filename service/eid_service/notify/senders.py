"""Where outgoing messages go. Development senders print them and append them
to a file (the "phone" a developer reads the activation code from)."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TextIO

from eid_service.domain.contact import mask_phone
from eid_service.use_cases.ports import OutgoingMessage


class Sender(Protocol):
    async def send(self, message: OutgoingMessage) -> None: ...


class ConsoleSender:
    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    async def send(self, message: OutgoingMessage) -> None:
        stream = self._stream or sys.stdout
        to = mask_phone(message.destination) if message.channel == "sms" else "email"
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
                "channel": message.channel,
                "to": message.destination,
                "body": message.body,
            },
            ensure_ascii=False,
        )
        fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\n").encode("utf-8"))
        finally:
            os.close(fd)
