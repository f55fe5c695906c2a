"""Registry files: one person per line, as JSON Lines or CSV (UTF-8).

Both carry the same fields (README: "The population registry"):

    personal_id    12 digits; a foreigner's assigned number starts with 900
    full_name      any Unicode normalisation form in, NFC out
    birth_date     YYYY-MM-DD
    gender         male | female
    kind           citizen (default) | foreigner
    passport       foreigners: number, nationality (ISO 3166-1 alpha-3),
                   issue_date, issue_place
    portrait       the enrolled face template: base64 of 128 float32 LE
    fingerprints   finger position (ISO/IEC 19794-2, 1-10) -> base64 of 64 float32 LE
    guardians      ID numbers of a child's parents or guardians (required under 14)
    documents      type, number, issuer, valid_from, valid_until (empty: no end)

In CSV the passport is four columns (nationality, passport_number,
passport_issue_date, passport_issue_place), fingerprints are `2:<base64>;7:<base64>`,
guardians `ID;ID` and documents `type|number|issuer|valid_from|valid_until`
joined by `;`. A bad row becomes a `Problem` naming the field and why, never
its value (a report must not carry ID numbers or names).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

import numpy as np

from eid_service.domain.biometrics import (
    FACE_DIMENSIONS,
    FINGERPRINT_DIMENSIONS,
    MAX_FINGERPRINTS,
    Finger,
    Template,
)
from eid_service.domain.citizen import (
    MIN_SELF_REGISTRATION_AGE,
    Demographics,
    Gender,
    age_on,
    parse_birth_date,
    parse_full_name,
)
from eid_service.domain.errors import InvalidInput
from eid_service.domain.personal_id import check_consistent, parse_personal_id
from eid_service.domain.registry_person import (
    NATIONALITY_PATTERN,
    PASSPORT_NUMBER_PATTERN,
    DocumentType,
    Passport,
    PersonKind,
    RegistryDocument,
    RegistryPerson,
)

CSV_COLUMNS = (
    "personal_id",
    "full_name",
    "birth_date",
    "gender",
    "kind",
    "nationality",
    "passport_number",
    "passport_issue_date",
    "passport_issue_place",
    "portrait",
    "fingerprints",
    "guardians",
    "documents",
)
REQUIRED_CSV_COLUMNS = frozenset({"personal_id", "full_name", "birth_date", "gender"})
MAX_LINE_BYTES = 65_536
MAX_GUARDIANS = 4
MAX_DOCUMENTS = 20
_MAX_TEXT = 100
_DOCUMENT_NUMBER = re.compile(r"[A-Z0-9]{4,20}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_COLUMN_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
_EARLIEST = date(1900, 1, 1)
_FORMATS = {"csv": "csv", "jsonl": "jsonl", "ndjson": "jsonl", "json": "jsonl"}
_GENDERS = {g.value: g for g in Gender}
_KINDS = {k.value: k for k in PersonKind}
_DOCUMENT_TYPES = {t.value: t for t in DocumentType}
_FINGERS = {str(f.value): f for f in Finger}
T = TypeVar("T")


class Problem(Exception):
    """What is wrong with a row: the field and a description (no values)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class BadRow:
    line: int
    field: str
    reason: str


def file_format(name: str, given: str | None = None) -> str:
    """csv or jsonl: as given, else from the file name's extension."""
    if given is not None:
        return _FORMATS[given]
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    try:
        return _FORMATS[suffix]
    except KeyError:
        raise ValueError(
            f"cannot tell the format of {name!r} from its extension: name it .csv or"
            " .jsonl, or pass --format"
        ) from None


# -- writing -------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def person_record(person: RegistryPerson) -> dict[str, Any]:
    """The JSON Lines object of a person."""
    d = person.demographics
    record: dict[str, Any] = {
        "personal_id": d.personal_id,
        "full_name": d.full_name,
        "birth_date": d.birth_date.isoformat(),
        "gender": d.gender.value,
        "kind": person.kind.value,
    }
    if person.passport is not None:
        p = person.passport
        record["passport"] = {
            "number": p.number,
            "nationality": p.nationality,
            "issue_date": p.issue_date.isoformat(),
            "issue_place": p.issue_place,
        }
    if person.portrait is not None:
        record["portrait"] = _b64(person.portrait.packed)
    if person.fingerprints:
        record["fingerprints"] = {
            str(f.value): _b64(t.packed)
            for f, t in sorted(person.fingerprints.items(), key=lambda i: i[0].value)
        }
    if person.guardians:
        record["guardians"] = list(person.guardians)
    if person.documents:
        record["documents"] = [
            {
                "type": doc.doc_type.value,
                "number": doc.number,
                "issuer": doc.issuer,
                "valid_from": doc.valid_from.isoformat(),
                "valid_until": None if doc.valid_until is None else doc.valid_until.isoformat(),
            }
            for doc in person.documents
        ]
    return record


def jsonl_lines(people: Iterable[RegistryPerson]) -> str:
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    return "".join(dumps(person_record(p)) + "\n" for p in people)


def csv_header() -> str:
    return ",".join(CSV_COLUMNS) + "\n"


def csv_lines(people: Iterable[RegistryPerson]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for person in people:
        d, p = person.demographics, person.passport
        writer.writerow(
            (
                d.personal_id,
                d.full_name,
                d.birth_date.isoformat(),
                d.gender.value,
                person.kind.value,
                "" if p is None else p.nationality,
                "" if p is None else p.number,
                "" if p is None else p.issue_date.isoformat(),
                "" if p is None else p.issue_place,
                "" if person.portrait is None else _b64(person.portrait.packed),
                ";".join(
                    f"{f.value}:{_b64(t.packed)}"
                    for f, t in sorted(person.fingerprints.items(), key=lambda i: i[0].value)
                ),
                ";".join(person.guardians),
                ";".join(
                    "|".join(
                        (
                            doc.doc_type.value,
                            doc.number,
                            doc.issuer,
                            doc.valid_from.isoformat(),
                            "" if doc.valid_until is None else doc.valid_until.isoformat(),
                        )
                    )
                    for doc in person.documents
                ),
            )
        )
    return out.getvalue()


# -- reading -------------------------------------------------------------


@dataclass(slots=True)
class _Parsed:
    """A row whose fields passed, its templates still to check (in bulk)."""

    line: int
    demographics: Demographics
    kind: PersonKind
    passport: Passport | None
    portrait: bytes | None
    fingerprints: dict[Finger, bytes]
    guardians: tuple[str, ...]
    documents: tuple[RegistryDocument, ...]


def _text(value: object, field: str, *, required: bool = True) -> str:
    if value is None or value == "":
        if required:
            raise Problem(field, "missing")
        return ""
    if not isinstance(value, str):
        raise Problem(field, "not a string")
    return value


def _label(value: object, field: str) -> str:
    """An issuer or place name: NFC, single-spaced, printable, at most 100 characters."""
    raw = _text(value, field)
    text = _labels.get(raw)
    if text is None:
        text = " ".join(unicodedata.normalize("NFC", raw).split())
        if not text or len(text) > _MAX_TEXT:
            raise Problem(field, f"must be 1 to {_MAX_TEXT} characters")
        if not text.isprintable():
            raise Problem(field, "contains control characters")
        _remember(_labels, raw, text)
    return text


# What a worker has checked already: names, places and dates repeat a lot
# across a registry, and a dictionary look-up costs less than the checks.
_CACHE_LIMIT = 500_000
_labels: dict[str, str] = {}
_names: dict[str, str] = {}
_dates: dict[str, date] = {}  # any well-formed date
_birth_dates: dict[str, date] = {}  # ... and between 1900 and today
_birth_dates_today: date | None = None  # the today they were checked against


def _remember(cache: dict[str, T], key: str, value: T) -> None:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = value


def _name(value: object) -> str:
    raw = _text(value, "full_name")
    name = _names.get(raw)
    if name is None:
        try:
            name = parse_full_name(raw)
        except InvalidInput as e:
            raise _invalid(e, "full_name") from None
        _remember(_names, raw, name)
    return name


def _birth_date(value: object, today: date) -> date:
    global _birth_dates_today  # one per process, like the caches
    raw = _text(value, "birth_date")
    # Not kept in _birth_dates itself: a row whose birth date is written
    # "today" would find it there and pass.
    if _birth_dates_today != today:  # checked against another day: start again
        _birth_dates.clear()
        _birth_dates_today = today
    born = _birth_dates.get(raw)
    if born is None:
        try:
            born = parse_birth_date(raw, today)
        except InvalidInput as e:
            raise _invalid(e, "birth_date") from None
        _remember(_birth_dates, raw, born)
    return born


def _date(value: object, field: str) -> date:
    text = _text(value, field)
    known = _dates.get(text)
    if known is not None:
        return known
    if not _ISO_DATE.fullmatch(text):
        raise Problem(field, "not a date written YYYY-MM-DD")
    try:
        parsed = date.fromisoformat(text)
    except ValueError:
        raise Problem(field, "not a calendar date") from None
    _remember(_dates, text, parsed)
    return parsed


def _template(value: object, field: str, dimensions: int) -> bytes:
    text = _text(value, field)
    try:
        raw = binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        raise Problem(field, "not base64") from None
    if len(raw) != 4 * dimensions:
        raise Problem(field, f"a template is {dimensions} float32 values ({4 * dimensions} bytes)")
    return raw


def _lookup(table: dict[str, T], value: object) -> T | None:
    """The entry a string names; None for anything else (a JSON list or object
    is unhashable: looked up as it is, it would abort the whole import)."""
    return table.get(value) if isinstance(value, str) else None


def _invalid(error: InvalidInput, field: str) -> Problem:
    return Problem(field, error.message)


def parse_record(record: dict[str, Any], line: int, today: date) -> _Parsed:
    """A JSON Lines object (or a CSV row brought to that shape) checked field by field."""
    try:
        pid = parse_personal_id(_text(record.get("personal_id"), "personal_id"))
    except InvalidInput as e:
        raise _invalid(e, "personal_id") from None
    name = _name(record.get("full_name"))
    born = _birth_date(record.get("birth_date"), today)
    gender = _lookup(_GENDERS, record.get("gender"))
    if gender is None:
        raise Problem("gender", "must be male or female")
    kind = _lookup(_KINDS, record.get("kind") or "citizen")
    if kind is None:
        raise Problem("kind", "must be citizen or foreigner")
    if (kind is PersonKind.FOREIGNER) != pid.is_foreigner:
        raise Problem(
            "personal_id", "foreigners hold numbers starting 900, citizens numbers that do not"
        )
    try:
        check_consistent(pid, born, gender)
    except InvalidInput as e:
        raise _invalid(e, "personal_id") from None
    passport = _passport(record.get("passport"), kind, born, today)
    portrait = record.get("portrait")
    fingerprints = _fingerprints(record.get("fingerprints"))
    guardians = _guardians(record.get("guardians"), pid.value)
    if not guardians and age_on(born, today) < MIN_SELF_REGISTRATION_AGE:
        raise Problem("guardians", "a child under 14 needs a parent or guardian")
    return _Parsed(
        line=line,
        demographics=Demographics(pid.value, name, born, gender),
        kind=kind,
        passport=passport,
        portrait=None
        if portrait in (None, "")
        else _template(portrait, "portrait", FACE_DIMENSIONS),
        fingerprints=fingerprints,
        guardians=guardians,
        documents=_documents(record.get("documents")),
    )


def _passport(value: object, kind: PersonKind, born: date, today: date) -> Passport | None:
    if kind is PersonKind.CITIZEN:
        if value not in (None, {}, ""):
            raise Problem("passport", "only foreigners are recorded with a passport")
        return None
    if not isinstance(value, dict):
        raise Problem("passport", "a foreigner needs a passport")
    number = _text(value.get("number"), "passport.number")
    if not PASSPORT_NUMBER_PATTERN.fullmatch(number):
        raise Problem("passport.number", "must be 6 to 9 capital letters and digits")
    nationality = _text(value.get("nationality"), "passport.nationality")
    if not NATIONALITY_PATTERN.fullmatch(nationality) or nationality == "VNM":
        raise Problem(
            "passport.nationality", "must be a foreign ISO 3166-1 alpha-3 code (e.g. KOR)"
        )
    issued = _date(value.get("issue_date"), "passport.issue_date")
    if not born <= issued <= today:
        raise Problem("passport.issue_date", "must fall between the birth date and today")
    return Passport(
        number, nationality, issued, _label(value.get("issue_place"), "passport.issue_place")
    )


def _fingerprints(value: object) -> dict[Finger, bytes]:
    if value in (None, "", {}):
        return {}
    if not isinstance(value, dict):
        raise Problem("fingerprints", "must map finger positions to templates")
    if len(value) > MAX_FINGERPRINTS:
        raise Problem("fingerprints", f"at most {MAX_FINGERPRINTS}")
    prints: dict[Finger, bytes] = {}
    for position, template in value.items():
        finger = _FINGERS.get(position)
        if finger is None:
            raise Problem("fingerprints", "a finger position is not 1 to 10")
        prints[finger] = _template(template, "fingerprints", FINGERPRINT_DIMENSIONS)
    return prints


def _guardians(value: object, own: str) -> tuple[str, ...]:
    if value in (None, "", []):
        return ()
    if not isinstance(value, list) or len(value) > MAX_GUARDIANS:
        raise Problem("guardians", f"must be a list of at most {MAX_GUARDIANS} ID numbers")
    found: list[str] = []
    for raw in value:
        try:
            guardian = parse_personal_id(_text(raw, "guardians")).value
        except InvalidInput as e:
            raise _invalid(e, "guardians") from None
        if guardian == own:
            raise Problem("guardians", "a person cannot be their own guardian")
        if guardian not in found:
            found.append(guardian)
    return tuple(found)


def _documents(value: object) -> tuple[RegistryDocument, ...]:
    if value in (None, "", []):
        return ()
    if not isinstance(value, list) or len(value) > MAX_DOCUMENTS:
        raise Problem("documents", f"must be a list of at most {MAX_DOCUMENTS} documents")
    docs: list[RegistryDocument] = []
    for item in value:
        if not isinstance(item, dict):
            raise Problem("documents", "a document must be an object")
        doc_type = _lookup(_DOCUMENT_TYPES, item.get("type"))
        if doc_type is None:
            raise Problem("documents.type", "not a known document type")
        number = _text(item.get("number"), "documents.number")
        if not _DOCUMENT_NUMBER.fullmatch(number):
            raise Problem("documents.number", "must be 4 to 20 capital letters and digits")
        valid_from = _date(item.get("valid_from"), "documents.valid_from")
        until = item.get("valid_until")
        valid_until = None if until in (None, "") else _date(until, "documents.valid_until")
        if valid_from < _EARLIEST:
            raise Problem("documents.valid_from", "must not be before 1900-01-01")
        if valid_until is not None and valid_until < valid_from:
            raise Problem("documents.valid_until", "must not be before valid_from")
        docs.append(
            RegistryDocument(
                doc_type,
                number,
                _label(item.get("issuer"), "documents.issuer"),
                valid_from,
                valid_until,
            )
        )
    return tuple(docs)


def csv_record(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row in the shape of a JSON Lines object."""
    record: dict[str, Any] = {
        key: row.get(key) for key in ("personal_id", "full_name", "birth_date", "gender", "kind")
    }
    if any(row.get(k) for k in ("nationality", "passport_number", "passport_issue_date")):
        record["passport"] = {
            "number": row.get("passport_number"),
            "nationality": row.get("nationality"),
            "issue_date": row.get("passport_issue_date"),
            "issue_place": row.get("passport_issue_place"),
        }
    record["portrait"] = row.get("portrait")
    prints = row.get("fingerprints")
    if prints:
        record["fingerprints"] = dict(_pair(item) for item in prints.split(";"))
    guardians = row.get("guardians")
    if guardians:
        record["guardians"] = guardians.split(";")
    documents = row.get("documents")
    if documents:
        record["documents"] = [_csv_document(item) for item in documents.split(";")]
    return record


def _pair(item: str) -> tuple[str, str]:
    position, sep, template = item.partition(":")
    if not sep:
        raise Problem("fingerprints", "write each as position:base64, joined by ;")
    return position, template


def _csv_document(item: str) -> dict[str, str]:
    parts = item.split("|")
    if len(parts) != 5:
        raise Problem(
            "documents", "write each as type|number|issuer|valid_from|valid_until, joined by ;"
        )
    return dict(zip(("type", "number", "issuer", "valid_from", "valid_until"), parts, strict=True))


# -- a chunk of lines ------------------------------------------------------


@dataclass
class ReadChunk:
    """What one chunk of a file held: the people of its good rows (in file
    order, with their line numbers) and its bad rows."""

    people: list[RegistryPerson]
    lines: list[int]
    bad: list[BadRow]
    line_count: int

    def rebased(self, first_line: int) -> ReadChunk:
        """Line numbers counted from `first_line` instead of 0."""
        return ReadChunk(
            self.people,
            [first_line + n for n in self.lines],
            [BadRow(first_line + b.line, b.field, b.reason) for b in self.bad],
            self.line_count,
        )


def _finite_rows(raw: list[bytes], dimensions: int) -> list[bool]:
    """Per template: finite values and not all zero (numpy, the whole chunk at once)."""
    if not raw:
        return []
    values = np.frombuffer(b"".join(raw), dtype="<f4").reshape(len(raw), dimensions)
    ok = np.isfinite(values).all(axis=1) & values.any(axis=1)
    return [bool(v) for v in ok]


def read_chunk(
    data: bytes, fmt: str, header: list[str] | None, today: date, *, at_start: bool = False
) -> ReadChunk:
    """Parses `data` (whole lines). Line numbers in the result count from 0 at
    the chunk's first line; `at_start`: the chunk opens the file (a byte-order
    mark may precede its first line)."""
    parsed: list[_Parsed] = []
    bad: list[BadRow] = []
    raw_lines = data.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    reader: Callable[[str], dict[str, Any]]
    if fmt == "jsonl":
        reader = _json_object
    else:
        assert header is not None
        reader = _csv_reader(header)
    for offset, raw in enumerate(raw_lines):
        line = offset
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if not raw.strip():
            continue
        try:
            if len(raw) > MAX_LINE_BYTES:
                raise Problem("row", f"longer than {MAX_LINE_BYTES} bytes")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise Problem("row", "not UTF-8") from None
            if offset == 0 and at_start:
                text = text.removeprefix("\ufeff")  # a byte-order mark
            parsed.append(parse_record(reader(text), line, today))
        except Problem as problem:
            bad.append(BadRow(line, problem.field, problem.reason))
    faces = _finite_rows([p.portrait for p in parsed if p.portrait is not None], FACE_DIMENSIONS)
    prints = _finite_rows(
        [t for p in parsed for t in p.fingerprints.values()], FINGERPRINT_DIMENSIONS
    )
    faces_ok, prints_ok = iter(faces), iter(prints)
    people: list[RegistryPerson] = []
    lines: list[int] = []
    for p in parsed:
        face_ok = p.portrait is None or next(faces_ok)
        print_checks = [next(prints_ok) for _ in p.fingerprints]
        if not face_ok:
            bad.append(BadRow(p.line, "portrait", "a value is not finite, or all are zero"))
            continue
        if not all(print_checks):
            bad.append(BadRow(p.line, "fingerprints", "a value is not finite, or all are zero"))
            continue
        people.append(
            RegistryPerson(
                p.demographics,
                kind=p.kind,
                passport=p.passport,
                portrait=None if p.portrait is None else Template(p.portrait),
                fingerprints={f: Template(t) for f, t in p.fingerprints.items()},
                guardians=p.guardians,
                documents=p.documents,
            )
        )
        lines.append(p.line)
    bad.sort(key=lambda b: b.line)
    return ReadChunk(people, lines, bad, len(raw_lines))


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
        raise Problem("row", "not a JSON object") from None
    if not isinstance(value, dict):
        raise Problem("row", "not a JSON object")
    return value


def _csv_reader(header: list[str]) -> Callable[[str], dict[str, Any]]:
    width = len(header)

    def read(text: str) -> dict[str, Any]:
        try:
            cells = next(csv.reader([text]))
        except csv.Error:
            raise Problem("row", "not a CSV row") from None
        if len(cells) != width:
            raise Problem("row", f"{len(cells)} cells where the header names {width}")
        return csv_record(dict(zip(header, cells, strict=True)))

    return read


def parse_header(line: bytes) -> list[str]:
    """The CSV header's column names; ValueError naming what is wrong."""
    text = line.decode("utf-8-sig").strip()
    columns = next(csv.reader([text]))
    unknown = [c for c in columns if c not in CSV_COLUMNS]
    if unknown:
        known = ", ".join(CSV_COLUMNS)
        # Only what looks like a column name is repeated: a file without its
        # header puts a person's ID number, name and birth date here.
        if len(unknown) == len(columns):
            raise ValueError(f"the first line names no known column: no header? (known: {known})")
        named = [c for c in unknown if _COLUMN_NAME.fullmatch(c)]
        others = f" and {len(unknown) - len(named)} more" if len(named) < len(unknown) else ""
        raise ValueError(f"unknown CSV columns: {', '.join(named)}{others} (known: {known})")
    missing = sorted(REQUIRED_CSV_COLUMNS - set(columns))
    if missing:
        raise ValueError(f"the CSV header lacks {', '.join(missing)}")
    if len(set(columns)) != len(columns):
        raise ValueError("a CSV column is named twice")
    return columns
