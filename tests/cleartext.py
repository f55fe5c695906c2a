"""Looking for personal data stored in clear: needles (ID numbers, passport
and document numbers, names, phones, emails, biometric templates) searched
in haystacks made from a database's dumps and files.

A haystack is a list of labelled segments (a table's column, a line of a
dump, a page of a database file), searched twice: as bytes, for the exact
forms of a needle (UTF-8 NFC, UTF-8 NFD, a template's float32 bytes), and as
text folded the way a lenient index would fold it (NFKD without combining
marks, "đ" as "d", case-folded), so that "Nguyễn Thị Lan" is found written
in NFC, in NFD, as "NGUYEN THI LAN" or as "nguyen thi lan" alike. A finding
names the haystack, the segment's label and the needle's kind and form; its
context shows the surroundings with every letter and digit masked, so a
failure message never prints the needle, nor any other personal data.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum

_MARKS = re.compile("[\u0300-\u036f]")
_STROKE = str.maketrans({"đ": "d", "Đ": "D"})
# Between segments: no needle (all printable) spans two of them.
_SEPARATOR = "\x00"
_CONTEXT = 24


def fold(text: str) -> str:
    """Without diacritics and case-folded: "Nguyễn Thị Lan", in NFC or NFD,
    is "nguyen thi lan"."""
    return _MARKS.sub("", unicodedata.normalize("NFKD", text.translate(_STROKE))).casefold()


class Kind(Enum):
    ID_NUMBER = "ID number"
    PASSPORT_NUMBER = "passport number"
    FULL_NAME = "full name"
    PHONE = "phone number"
    EMAIL = "email address"
    DOCUMENT_NUMBER = "document number"
    TEMPLATE = "biometric template"
    CONTROL = "control (stored in clear on purpose)"


# A template's first values are enough to recognise it (16 float32 values).
_TEMPLATE_PREFIX = 64


@dataclass(frozen=True)
class Needle:
    """One value that must not be stored in clear."""

    kind: Kind
    value: str | bytes

    def text_forms(self) -> tuple[tuple[str, str], ...]:
        """(form, folded text) to find in the folded text of a haystack."""
        if isinstance(self.value, bytes):
            return ()
        if self.kind in (Kind.FULL_NAME, Kind.CONTROL):
            return (("case-folded without diacritics", fold(self.value)),)
        forms = [(form, fold(text)) for form, text in self._written()]
        compact = re.sub(r"[^0-9A-Za-z]", "", self.value)
        if self.kind is Kind.DOCUMENT_NUMBER and compact != self.value and len(compact) >= 6:
            forms.append(("letters and digits only", fold(compact)))
        return tuple(forms)

    def byte_forms(self) -> tuple[tuple[str, bytes], ...]:
        """(form, bytes) to find as they are: the exact encodings."""
        if isinstance(self.value, bytes):
            return (("float32 little-endian", self.value[:_TEMPLATE_PREFIX]),)
        if self.kind not in (Kind.FULL_NAME, Kind.CONTROL):
            return tuple((form, text.encode()) for form, text in self._written())
        forms = [("UTF-8 NFC", unicodedata.normalize("NFC", self.value).encode())]
        nfd = unicodedata.normalize("NFD", self.value).encode()
        if nfd != forms[0][1]:
            forms.append(("UTF-8 NFD", nfd))
        return tuple(forms)

    def _written(self) -> tuple[tuple[str, str], ...]:
        assert isinstance(self.value, str)
        if self.kind is Kind.PHONE:
            national = "0" + self.value.removeprefix("+84").removeprefix("0")
            e164 = "+84" + national[1:]
            return (("E.164", e164), ("E.164 without +", e164[1:]), ("national", national))
        return (("as written", self.value),)


@dataclass(frozen=True)
class Segment:
    label: str
    data: bytes


class Haystack:
    """Labelled segments, joined as bytes and as folded text."""

    def __init__(self, name: str, segments: Iterable[Segment]) -> None:
        self.name = name
        self.labels: list[str] = []
        self._raw_starts: list[int] = []
        self._text_starts: list[int] = []
        raw: list[bytes] = []
        text: list[str] = []
        raw_at = text_at = 0
        for segment in segments:
            folded = fold(segment.data.decode("utf-8", errors="replace"))
            self.labels.append(segment.label)
            self._raw_starts.append(raw_at)
            self._text_starts.append(text_at)
            raw.append(segment.data)
            text.append(folded)
            raw_at += len(segment.data) + 1
            text_at += len(folded) + 1
        self.raw = _SEPARATOR.encode().join(raw)
        self.text = _SEPARATOR.join(text)

    def label_at(self, position: int, *, folded: bool) -> tuple[str, int]:
        """The label of the segment holding `position` and the offset in it."""
        starts = self._text_starts if folded else self._raw_starts
        i = bisect.bisect_right(starts, position) - 1
        return self.labels[i], position - starts[i]

    def context(self, position: int, length: int, kind: Kind, *, folded: bool) -> str:
        """The surroundings of a hit, every letter and digit masked."""
        if folded:
            before = self.text[max(0, position - _CONTEXT) : position]
            after = self.text[position + length : position + length + _CONTEXT]
        else:
            raw_before = self.raw[max(0, position - _CONTEXT) : position]
            raw_after = self.raw[position + length : position + length + _CONTEXT]
            before = raw_before.decode("utf-8", errors="replace")
            after = raw_after.decode("utf-8", errors="replace")
        return f"{_mask(before)}<{kind.value}>{_mask(after)}"


def _mask(text: str) -> str:
    masked = []
    for c in text:
        if c.isdigit():
            masked.append("#")
        elif c.isalpha():
            masked.append("x")
        elif c.isprintable() and c != "\ufffd":
            masked.append(c)
        else:
            masked.append(".")
    return "".join(masked)


@dataclass(frozen=True)
class Finding:
    haystack: str
    where: str
    kind: Kind
    form: str
    context: str

    def __str__(self) -> str:
        return f"{self.haystack}: {self.kind.value} ({self.form}) in {self.where}: {self.context!r}"


def _where(haystack: Haystack, position: int, *, folded: bool) -> str:
    label, offset = haystack.label_at(position, folded=folded)
    unit = "character" if folded else "byte"
    return f"{label} at {unit} {offset}"


def find(haystack: Haystack, needle: Needle) -> Finding | None:
    """The first place the needle is, in any of its forms, or None."""
    for form, text in needle.text_forms():
        position = haystack.text.find(text)
        if position >= 0:
            # Which exact encoding is there, if one is (the byte offset is then exact).
            exact = _find_exact(haystack, needle)
            if exact is not None:
                return exact
            where = _where(haystack, position, folded=True)
            context = haystack.context(position, len(text), needle.kind, folded=True)
            return Finding(haystack.name, where, needle.kind, form, context)
    return _find_exact(haystack, needle) if isinstance(needle.value, bytes) else None


def _find_exact(haystack: Haystack, needle: Needle) -> Finding | None:
    for form, data in needle.byte_forms():
        at = haystack.raw.find(data)
        if at >= 0:
            where = _where(haystack, at, folded=False)
            context = haystack.context(at, len(data), needle.kind, folded=False)
            return Finding(haystack.name, where, needle.kind, form, context)
    return None


def search(haystacks: Iterable[Haystack], needles: Iterable[Needle]) -> list[Finding]:
    """Every (haystack, needle) found: the first place of each."""
    unique = list(dict.fromkeys(needles))
    return [
        finding
        for haystack in haystacks
        for needle in unique
        if (finding := find(haystack, needle)) is not None
    ]


def report(findings: list[Finding], limit: int = 30) -> str:
    lines = [str(f) for f in findings[:limit]]
    if len(findings) > limit:
        lines.append(f"... and {len(findings) - limit} more")
    return f"{len(findings)} needle(s) stored in clear:\n" + "\n".join(lines)


# Dumps into segments.


def pages(label: str, data: bytes, size: int = 4096, overlap: int = 512) -> Iterator[Segment]:
    """A file's bytes in overlapping pages (a needle across a page boundary
    is whole in one of them), labelled with their byte range."""
    for start in range(0, max(len(data), 1), size):
        end = min(len(data), start + size + overlap)
        yield Segment(f"{label} bytes {start}-{end}", data[start:end])


_COPY = re.compile(r"^COPY (?:\S+\.)?\"?([^\s\"(]+)\"? \((.*)\) FROM stdin;$")
_BYTEA = re.compile(r"^\\\\x([0-9a-f]*)$")


def _copy_field(value: str) -> bytes:
    r"""A COPY text field: a bytea (\\x + hex) as its bytes, text unescaped."""
    if (bytea := _BYTEA.match(value)) is not None:
        return bytes.fromhex(bytea.group(1))
    if value == r"\N":
        return b""
    unescaped = re.sub(r"\\(.)", lambda m: {"t": "\t", "n": "\n", "r": "\r"}.get(m[1], m[1]), value)
    return unescaped.encode()


def pg_dump_segments(dump: str) -> tuple[list[Segment], dict[str, int]]:
    """A plain-text pg_dump as segments: each field of each COPY row labelled
    table.column (a bytea decoded to its bytes), every other line labelled
    with its number; and the rows per table."""
    segments: list[Segment] = []
    rows: dict[str, int] = {}
    table: str | None = None
    columns: list[str] = []
    for number, line in enumerate(dump.split("\n"), 1):
        if table is not None:
            if line == "\\.":
                table = None
                continue
            rows[table] += 1
            fields = line.split("\t")
            for column, value in zip(columns, fields, strict=False):
                segments.append(Segment(f"{table}.{column}", _copy_field(value)))
            continue
        if (copy := _COPY.match(line)) is not None:
            table = copy.group(1)
            columns = [c.strip().strip('"') for c in copy.group(2).split(",")]
            rows.setdefault(table, 0)
        segments.append(Segment(f"dump line {number}", line.encode()))
    return segments, rows


_INSERT = re.compile(r'^INSERT INTO "?([^\s"(]+)"?')
_BLOB = re.compile(r"X'([0-9a-fA-F]*)'")


def iterdump_segments(lines: Iterable[str]) -> tuple[list[Segment], dict[str, int]]:
    """SQLite's iterdump: each line labelled with its table, each X'..'
    blob decoded to its bytes as a segment of its own; and the rows per table."""
    segments: list[Segment] = []
    rows: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        insert = _INSERT.match(line)
        label = f"{insert.group(1)} row (dump line {number})" if insert else f"dump line {number}"
        if insert is not None:
            rows[insert.group(1)] = rows.get(insert.group(1), 0) + 1
        for blob in _BLOB.finditer(line):
            segments.append(Segment(f"{label} blob", bytes.fromhex(blob.group(1))))
        segments.append(Segment(label, _BLOB.sub("X''", line).encode()))
    return segments, rows


def cell(value: object) -> bytes:
    """A value read from a database as the bytes to search."""
    if value is None:
        return b""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode()
