"""The citizens a workload calls about: from ``--citizens FILE`` (CSV with a header
row) or from ``--id`` options."""

from __future__ import annotations

import base64
import csv
from dataclasses import dataclass, field, replace
from pathlib import Path

from eid_client._commands import UsageError

COLUMNS = ("personal_id", "password", "full_name", "birth_date", "gender", "phone", "portrait")


@dataclass(frozen=True)
class Citizen:
    """One row; empty strings for the columns the file does not have. Only what a
    call sends: never logged or printed."""

    personal_id: str = field(repr=False)
    password: str = field(default="", repr=False)
    full_name: str = field(default="", repr=False)
    birth_date: str = field(default="", repr=False)
    gender: str = field(default="", repr=False)
    phone: str = field(default="", repr=False)
    # Register's captured face: base64 of the 512-byte float32 vector.
    portrait: str = field(default="", repr=False)

    def portrait_bytes(self) -> bytes:
        """The portrait as Register sends it; ValueError if not base64."""
        return base64.b64decode(self.portrait, validate=True)


def read_citizens(path: Path) -> list[Citizen]:
    """The rows of a CSV file whose header names some of :data:`COLUMNS`
    (``personal_id`` is required; other columns are ignored)."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            if "personal_id" not in header:
                raise UsageError(
                    f"{path}: the header row must name personal_id (columns: {', '.join(COLUMNS)})"
                )
            rows = [
                Citizen(**{c: (row.get(c) or "").strip() for c in COLUMNS if c in header})
                for row in reader
            ]
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    rows = [c for c in rows if c.personal_id]
    if not rows:
        raise UsageError(f"{path}: no citizens in the file")
    return rows


def citizens_from(
    path: Path | None, ids: list[str] | None, *, need: tuple[str, ...] = ()
) -> list[Citizen]:
    """From the file, else the ``--id`` values; each must have the ``need`` columns."""
    if path is not None:
        citizens = read_citizens(path)
    elif ids:
        citizens = [Citizen(personal_id=i) for i in ids]
    else:
        raise UsageError("name the citizens: --id ID (repeatable) or --citizens FILE")
    for column in need:
        missing = sum(1 for c in citizens if not getattr(c, column))
        if missing:
            raise UsageError(f"{missing} citizen(s) have no {column} (a --citizens FILE column)")
    return citizens


def with_password(citizens: list[Citizen], password: str) -> list[Citizen]:
    """Each citizen with ``password`` where the file gave none."""
    return [c if c.password else replace(c, password=password) for c in citizens]


def e164(phone: str) -> str:
    """A Vietnamese mobile number as the outbox addresses it: 0912345678 -> +84912345678."""
    digits = phone.strip().replace(" ", "")
    if digits.startswith("+"):
        return digits
    if digits.startswith("84"):
        return "+" + digits
    return "+84" + digits.removeprefix("0")
