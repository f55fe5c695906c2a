"""Registry files (JSON Lines and CSV): what `registry generate` writes reads
back as the same people; each bad row is reported with its line, field and a
reason that never repeats the value; names come out NFC."""

from __future__ import annotations

import base64
import json
import struct
import subprocess
import sys
import unicodedata
from datetime import date
from typing import Any

import pytest

from eid_service.domain.citizen import Gender
from eid_service.domain.personal_id import make_personal_id
from eid_service.registry_tools.generator import generate
from eid_service.registry_tools.records import (
    CSV_COLUMNS,
    csv_header,
    csv_lines,
    file_format,
    jsonl_lines,
    parse_header,
    person_record,
    read_chunk,
)

TODAY = date(2026, 11, 24)
PEOPLE = generate(11, 400, TODAY)
MOTHER_BORN = date(1990, 3, 4)
MOTHER = make_personal_id("079", MOTHER_BORN, Gender.FEMALE, 123_456).value
CHILD_BORN = date(2019, 6, 1)
CHILD = make_personal_id("079", CHILD_BORN, Gender.MALE, 123_457).value


def _face(value: float = 0.5) -> str:
    return base64.b64encode(struct.pack("<128f", *([value] * 128))).decode()


def _finger(value: float = 0.25) -> str:
    return base64.b64encode(struct.pack("<64f", *([value] * 64))).decode()


def _row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "personal_id": MOTHER,
        "full_name": "Trần Thị Thu Hà",
        "birth_date": MOTHER_BORN.isoformat(),
        "gender": "female",
        "kind": "citizen",
        "portrait": _face(),
        "fingerprints": {"2": _finger(), "7": _finger(0.5)},
        "documents": [
            {
                "type": "tax_code",
                "number": "8012345678",
                "issuer": "Cục Thuế Hồ Chí Minh",
                "valid_from": "2015-01-01",
                "valid_until": None,
            }
        ],
    }
    row.update(changes)
    return {k: v for k, v in row.items() if v is not None}


def _jsonl(*rows: dict[str, Any] | str) -> bytes:
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def _problems(*rows: dict[str, Any] | str) -> list[tuple[int, str, str]]:
    chunk = read_chunk(_jsonl(*rows), "jsonl", None, TODAY).rebased(1)
    return [(b.line, b.field, b.reason) for b in chunk.bad]


def test_generated_people_read_back_the_same_from_jsonl_and_csv() -> None:
    from_jsonl = read_chunk(jsonl_lines(PEOPLE).encode(), "jsonl", None, TODAY)
    assert from_jsonl.bad == []
    assert from_jsonl.people == PEOPLE
    assert from_jsonl.lines == list(range(len(PEOPLE)))
    header = parse_header(csv_header().encode())
    assert header == list(CSV_COLUMNS)
    from_csv = read_chunk(csv_lines(PEOPLE).encode(), "csv", header, TODAY)
    assert from_csv.bad == []
    assert from_csv.people == PEOPLE


def test_templates_are_base64_of_float32_little_endian() -> None:
    person = next(p for p in PEOPLE if p.fingerprints and p.portrait)
    record = person_record(person)
    assert person.portrait is not None
    assert base64.b64decode(record["portrait"]) == person.portrait.packed
    values = struct.unpack("<128f", base64.b64decode(record["portrait"]))
    assert values == person.portrait.values()
    assert set(record["fingerprints"]) == {"2", "7"}


def test_names_and_labels_come_out_nfc() -> None:
    nfd = unicodedata.normalize("NFD", "Trần  Thị Thu Hà")
    issuer = unicodedata.normalize("NFD", "Cục Thuế Hồ Chí Minh")
    doc = {**_row()["documents"][0], "issuer": issuer}
    chunk = read_chunk(_jsonl(_row(full_name=nfd, documents=[doc])), "jsonl", None, TODAY)
    (person,) = chunk.people
    assert person.demographics.full_name == "Trần Thị Thu Hà"
    assert unicodedata.is_normalized("NFC", person.documents[0].issuer)


BAD_ROWS = [
    (_row(personal_id="12345"), "personal_id"),
    (_row(personal_id="999190123456"), "personal_id"),  # no such province
    (_row(personal_id=make_personal_id("079", MOTHER_BORN, Gender.MALE, 1).value), "personal_id"),
    (_row(full_name="R2-D2"), "full_name"),
    (_row(birth_date="04/03/1990"), "birth_date"),
    (_row(birth_date="2099-01-01"), "birth_date"),
    (_row(gender="f"), "gender"),
    (_row(kind="tourist"), "kind"),
    # JSON lists and objects where a word goes: a bad row, not a TypeError ending the import.
    (_row(gender=["female"]), "gender"),
    (_row(kind={"citizen": True}), "kind"),
    (_row(documents=[{**_row()["documents"][0], "type": ["tax_code"]}]), "documents.type"),
    (_row(kind="foreigner"), "personal_id"),  # a citizen's number
    (_row(portrait="not base64!"), "portrait"),
    (_row(portrait=base64.b64encode(b"\x00" * 12).decode()), "portrait"),
    (_row(portrait=base64.b64encode(b"\x00" * 512).decode()), "portrait"),  # all zeros
    (
        _row(portrait=base64.b64encode(struct.pack("<128f", *[float("nan")] * 128)).decode()),
        "portrait",
    ),
    (_row(fingerprints={"11": _finger()}), "fingerprints"),
    (_row(fingerprints={"2": _face()}), "fingerprints"),  # a face where a finger goes
    (_row(guardians=[MOTHER]), "guardians"),  # herself
    (_row(guardians="nobody"), "guardians"),
    (_row(documents=[{"type": "library_card"}]), "documents.type"),
    (
        _row(documents=[{**_row()["documents"][0], "number": "no spaces allowed"}]),
        "documents.number",
    ),
    (
        _row(documents=[{**_row()["documents"][0], "valid_until": "2000-01-01"}]),
        "documents.valid_until",
    ),
    (
        _row(documents=[{**_row()["documents"][0], "valid_from": "0001-01-01"}]),
        "documents.valid_from",
    ),
    (_row(passport={"number": "M1234567", "nationality": "KOR"}), "passport"),
    ("[1, 2, 3]", "row"),
    ("{not json", "row"),
    ("[" * 10_000 + "]" * 10_000, "row"),  # deeper than the parser recurses
]


@pytest.mark.parametrize(("row", "field"), BAD_ROWS, ids=[f for _, f in BAD_ROWS])
def test_a_bad_row_names_its_line_and_field_without_its_value(
    row: dict[str, Any] | str, field: str
) -> None:
    good = _row(personal_id=make_personal_id("001", MOTHER_BORN, Gender.FEMALE, 9).value)
    problems = _problems(good, row, good)
    assert [(line, f) for line, f, _ in problems] == [(2, field)]
    reason = problems[0][2]
    assert reason
    for value in (MOTHER, "Trần", "R2-D2", "library_card", "8012345678"):
        assert value not in reason


def test_a_child_under_14_needs_a_guardian_and_foreigners_a_passport() -> None:
    child = _row(
        personal_id=CHILD,
        full_name="Lê Minh Khang",
        birth_date=CHILD_BORN.isoformat(),
        gender="male",
        fingerprints=None,
        documents=None,
    )
    assert _problems(child) == [(1, "guardians", "a child under 14 needs a parent or guardian")]
    assert _problems({**child, "guardians": [MOTHER]}) == []
    visitor = _row(personal_id="900000000042", kind="foreigner", full_name="Kim Min-jun")
    assert [p[1] for p in _problems(visitor)] == ["passport"]
    passport = {
        "number": "M12345678",
        "nationality": "KOR",
        "issue_date": "2021-06-01",
        "issue_place": "Seoul",
    }
    assert _problems({**visitor, "passport": passport}) == []
    for bad, field in (
        ({**passport, "nationality": "VNM"}, "passport.nationality"),
        ({**passport, "nationality": "kor"}, "passport.nationality"),
        ({**passport, "number": "M-1"}, "passport.number"),
        ({**passport, "issue_date": "2030-01-01"}, "passport.issue_date"),
        ({**passport, "issue_place": ""}, "passport.issue_place"),
    ):
        assert [p[1] for p in _problems({**visitor, "passport": bad})] == [field]


def test_a_birth_date_is_a_date_even_when_the_word_is_today() -> None:
    newborn = make_personal_id("079", TODAY, Gender.MALE, 123_458).value
    child = _row(
        personal_id=newborn,
        full_name="Lê Minh Khang",
        birth_date=TODAY.isoformat(),
        gender="male",
        guardians=[MOTHER],
        fingerprints=None,
        documents=None,
    )
    assert _problems(child) == []
    assert _problems({**child, "birth_date": "today"}) == [
        (1, "birth_date", "the birth date must be written as YYYY-MM-DD")
    ]


def test_blank_lines_crlf_and_a_byte_order_mark_are_fine() -> None:
    data = b"\xef\xbb\xbf" + _jsonl(_row()).replace(b"\n", b"\r\n") + b"\r\n\n"
    chunk = read_chunk(data, "jsonl", None, TODAY, at_start=True)
    assert chunk.bad == []
    assert len(chunk.people) == 1
    assert chunk.line_count == 3


def test_bytes_that_are_not_utf8_are_a_bad_row() -> None:
    data = _jsonl(_row()) + b'{"full_name": "\xff"}\n'
    chunk = read_chunk(data, "jsonl", None, TODAY).rebased(1)
    assert [(b.line, b.field, b.reason) for b in chunk.bad] == [(2, "row", "not UTF-8")]


def test_csv_rows_are_checked_like_json_lines() -> None:
    header = parse_header(b"personal_id,full_name,birth_date,gender,guardians,documents\n")
    rows = (
        f"{MOTHER},Trần Thị Thu Hà,1990-03-04,female,,"
        "tax_code|8012345678|Cục Thuế Hồ Chí Minh|2015-01-01|\n"
        f"{CHILD},Lê Minh Khang,2019-06-01,male,{MOTHER},\n"
        f"{CHILD},Lê Minh Khang,2019-06-01,male,,\n"
        f"{CHILD},Lê Minh Khang,2019-06-01\n"
        "a,b,c,d,e,tax_code|1\n"
    )
    chunk = read_chunk(rows.encode(), "csv", header, TODAY).rebased(2)
    assert len(chunk.people) == 2
    assert chunk.people[0].documents[0].issuer == "Cục Thuế Hồ Chí Minh"
    assert chunk.people[1].guardians == (MOTHER,)
    assert [(b.line, b.field) for b in chunk.bad] == [
        (4, "guardians"),
        (5, "row"),
        (6, "documents"),
    ]


def test_a_csv_header_must_name_known_columns() -> None:
    with pytest.raises(ValueError, match="unknown CSV columns: shoe_size"):
        parse_header(b"personal_id,full_name,birth_date,gender,shoe_size\n")
    with pytest.raises(ValueError, match="lacks gender"):
        parse_header(b"personal_id,full_name,birth_date\n")


def test_a_missing_or_damaged_csv_header_is_refused_without_repeating_its_cells() -> None:
    # A file without its header: the first person's row is taken for it.
    first_row = csv_lines(PEOPLE[:1]).encode()
    with pytest.raises(ValueError, match="no header") as refused:
        parse_header(first_row)
    person = PEOPLE[0].demographics
    for value in (person.personal_id, person.full_name, person.birth_date.isoformat()):
        assert value not in str(refused.value)
    with pytest.raises(ValueError, match="unknown CSV columns: shoe_size and 2 more") as refused:
        parse_header(f"personal_id,shoe_size,{MOTHER},Trần Thị,gender\n".encode())
    assert MOTHER not in str(refused.value)
    assert "Trần" not in str(refused.value)


def test_the_format_comes_from_the_extension_unless_given() -> None:
    assert file_format("people.csv") == "csv"
    assert file_format("people.JSONL") == "jsonl"
    assert file_format("people.ndjson") == "jsonl"
    assert file_format("people.txt", "csv") == "csv"
    with pytest.raises(ValueError, match="--format"):
        file_format("people.txt")


def test_the_cli_constants_are_the_tools_and_the_server_does_not_load_them() -> None:
    from eid_service import cli_registry
    from eid_service.registry_tools import generator, pipeline

    assert cli_registry.MAX_COUNT == generator.MAX_COUNT
    assert cli_registry.DEFAULT_BATCH == pipeline.DEFAULT_BATCH
    assert (cli_registry.EARLIEST_AS_OF, cli_registry.LATEST_AS_OF) == (
        generator.EARLIEST_AS_OF,
        generator.LATEST_AS_OF,
    )
    # Server workers start by importing the CLI: no numpy, no bulk tools in them.
    code = "import sys, eid_service.cli; print('numpy' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
