"""`registry generate` and `registry import` into each database: people come
back as they were made, a bad row is reported with its line and does not stop
the others, importing the same file again changes nothing, a guardian may come
later in the file but must come, and nothing is written in clear."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import tracemalloc
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import text

from eid_service.domain.citizen import age_on
from eid_service.domain.registry_person import PersonKind, RegistryPerson
from eid_service.registry_tools.generator import generate
from eid_service.registry_tools.pipeline import (
    CHUNK_BYTES,
    GUARDIAN_UNKNOWN,
    Imported,
    generate_registry,
    import_registry,
)
from eid_service.registry_tools.records import (
    MAX_LINE_BYTES,
    BadRow,
    csv_header,
    csv_lines,
    jsonl_lines,
    person_record,
)
from eid_service.security.field_cipher import FieldCipher
from eid_service.security.keyed_hash import KeyedHasher
from eid_service.security.keys import KeyRing, generate_key_ring
from eid_service.store.database import create_engine
from eid_service.store.protection import DataProtection
from eid_service.store.repositories.registry import REGISTRY_LOAD_LOCK
from eid_service.store.uow import SqlUnitOfWork
from eid_service.use_cases.ports import Repositories

TODAY = date(2026, 11, 24)
PEOPLE = generate(5, 300, TODAY)
QUIET = Console(quiet=True)


@pytest.fixture
def ring() -> KeyRing:
    return generate_key_ring()


@pytest.fixture
def uow(database_url: str, ring: KeyRing) -> Iterator[SqlUnitOfWork]:
    made = SqlUnitOfWork(
        database_url, DataProtection(FieldCipher(ring), KeyedHasher(ring.hmac_key))
    )
    try:
        yield made
    finally:
        made.close()


def _dump(url: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows: list[tuple[Any, ...]] = []
            for table in ("registry_citizens", "registry_guardians", "registry_documents"):
                query = text(f"SELECT * FROM {table}")  # noqa: S608 (our table names)
                rows.extend((table, *map(_plain, r)) for r in connection.execute(query))
            return sorted(rows, key=repr)
    finally:
        engine.dispose()


def _plain(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview) else value


async def _read_all(uow: SqlUnitOfWork, people: list[RegistryPerson]) -> list[Any]:
    def read(r: Repositories) -> list[Any]:
        return [r.registry.person(p.demographics.personal_id) for p in people]

    return await uow.read(read)


async def _import(uow: SqlUnitOfWork, ring: KeyRing, path: Path, fmt: str, **kw: Any) -> Imported:
    options: dict[str, Any] = {"workers": 0, "today": TODAY, "console": QUIET, **kw}
    return await import_registry(path=path, fmt=fmt, uow=uow, ring=ring, **options)


def _expected(person: RegistryPerson) -> RegistryPerson:
    """What `person()` gives back: everything but the documents."""
    return RegistryPerson(
        person.demographics,
        kind=person.kind,
        passport=person.passport,
        portrait=person.portrait,
        fingerprints=person.fingerprints,
        guardians=tuple(sorted(person.guardians)),
    )


@pytest.mark.asyncio
async def test_a_generated_registry_loads_and_reads_back(
    uow: SqlUnitOfWork, ring: KeyRing, database_url: str
) -> None:
    done = await generate_registry(
        count=len(PEOPLE),
        seed=5,
        as_of=TODAY,
        out=None,
        fmt=None,
        uow=uow,
        ring=ring,
        workers=0,
        console=QUIET,
    )
    assert (done.people, done.added) == (300, 300)
    assert done.children == sum(age_on(p.demographics.birth_date, TODAY) < 14 for p in PEOPLE)
    assert await _read_all(uow, PEOPLE) == [_expected(p) for p in PEOPLE]
    parent = next(p for p in PEOPLE if p.guardians)
    guardian = parent.guardians[0]
    wards = await uow.read(lambda r: r.registry.wards(guardian))
    assert parent.demographics.personal_id in wards
    adult = next(p for p in PEOPLE if p.documents)
    documents = await uow.read(lambda r: r.registry.documents(adult.demographics.personal_id))
    assert sorted(documents, key=repr) == sorted(adult.documents, key=repr)
    foreigner = next(p for p in PEOPLE if p.kind is PersonKind.FOREIGNER)
    assert foreigner.passport is not None
    found = await uow.read(
        lambda r: r.registry.person_by_passport(
            foreigner.passport.nationality,  # type: ignore[union-attr]
            foreigner.passport.number,  # type: ignore[union-attr]
        )
    )
    assert found == _expected(foreigner)
    # Generating the same registry again adds nobody.
    before = _dump(database_url)
    again = await generate_registry(
        count=len(PEOPLE),
        seed=5,
        as_of=TODAY,
        out=None,
        fmt=None,
        uow=uow,
        ring=ring,
        workers=0,
        console=QUIET,
    )
    assert again.added == 0
    assert _dump(database_url) == before
    # Nothing identifying in clear.
    dump = repr(before).encode()
    for person in PEOPLE[:50]:
        assert person.demographics.personal_id.encode() not in dump
        assert person.demographics.full_name.encode() not in dump
        for doc in person.documents:
            assert doc.number.encode() not in dump
    assert foreigner.passport.number.encode() not in dump


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
@pytest.mark.asyncio
async def test_import_reports_bad_rows_by_line_and_is_idempotent(
    uow: SqlUnitOfWork, ring: KeyRing, database_url: str, tmp_path: Path, fmt: str
) -> None:
    people = PEOPLE[:120]
    if fmt == "jsonl":
        lines = jsonl_lines(people).splitlines()
        bad_name = json.dumps({**person_record(people[0]), "full_name": "X Æ A-12"})
        bad_date = json.dumps({**person_record(people[1]), "birth_date": "2030-02-30"})
    else:
        lines = [csv_header().strip(), *csv_lines(people).splitlines()]
        bad_name = lines[1].replace(people[0].demographics.full_name, "X Æ A-12")
        bad_date = lines[2].replace(people[1].demographics.birth_date.isoformat(), "2030-02-30")
    # Two bad rows among the good ones, at known lines.
    lines.insert(10, bad_name)
    lines.insert(50, bad_date)
    path = tmp_path / f"registry.{fmt}"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = await _import(uow, ring, path, fmt)
    assert [(b.line, b.field) for b in done.bad] == [(11, "full_name"), (51, "birth_date")]
    assert done.bad[1].reason == "the birth date is not a valid calendar date"
    assert (done.rows, done.added, done.present) == (122, 120, 0)
    assert await _read_all(uow, people) == [_expected(p) for p in people]
    before = _dump(database_url)
    again = await _import(uow, ring, path, fmt)
    assert (again.rows, again.added, again.present) == (122, 0, 120)
    assert [(b.line, b.field) for b in again.bad] == [(11, "full_name"), (51, "birth_date")]
    assert _dump(database_url) == before


@pytest.mark.asyncio
async def test_a_guardian_may_come_later_in_the_file_but_must_come(
    uow: SqlUnitOfWork, ring: KeyRing, tmp_path: Path
) -> None:
    child = next(p for p in PEOPLE if age_on(p.demographics.birth_date, TODAY) < 14)
    parents = [p for p in PEOPLE if p.demographics.personal_id in child.guardians]
    stranger = next(p for p in PEOPLE if p not in parents and p is not child and not p.guardians)
    # Another child, whose guardian (a valid number) is nowhere.
    orphan = {
        **person_record(child),
        "personal_id": child.demographics.personal_id[:6] + "999998",
        "guardians": ["001190000001"],
    }
    path = tmp_path / "family.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps(person_record(child)),  # before the parents
                json.dumps(person_record(stranger)),
                *(json.dumps(person_record(p)) for p in parents),
                json.dumps(orphan),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    done = await _import(uow, ring, path, "jsonl")
    last = 3 + len(parents)
    assert [(b.line, b.field, b.reason) for b in done.bad] == [
        (last, "guardians", GUARDIAN_UNKNOWN)
    ]
    assert done.added == 2 + len(parents)
    (got,) = await _read_all(uow, [child])
    assert got == _expected(child)
    # A guardian already in the registry counts.
    path2 = tmp_path / "child-only.jsonl"
    sibling = {**person_record(child), "personal_id": child.demographics.personal_id[:6] + "999999"}
    path2.write_text(json.dumps(sibling) + "\n", encoding="utf-8")
    later = await _import(uow, ring, path2, "jsonl")
    assert (later.added, later.bad) == (1, [])


@pytest.mark.asyncio
async def test_a_row_for_someone_present_adds_no_guardian_or_document(
    uow: SqlUnitOfWork, ring: KeyRing, tmp_path: Path
) -> None:
    child = next(p for p in PEOPLE if age_on(p.demographics.birth_date, TODAY) < 14)
    parents = [p for p in PEOPLE if p.demographics.personal_id in child.guardians]
    first = tmp_path / "family.jsonl"
    first.write_text(jsonl_lines([*parents, child]), encoding="utf-8")
    assert (await _import(uow, ring, first, "jsonl")).bad == []
    # Another agency's file names a stranger as the child's guardian, with a document.
    stranger = next(p for p in PEOPLE if p not in parents and p is not child and not p.guardians)
    stranger_id = stranger.demographics.personal_id
    document = {
        "type": "tax_code",
        "number": "8099999999",
        "issuer": "Cục Thuế",
        "valid_from": "2020-01-01",
        "valid_until": None,
    }
    forged = {**person_record(child), "guardians": [stranger_id], "documents": [document]}
    second = tmp_path / "forged.jsonl"
    second.write_text(
        json.dumps(person_record(stranger)) + "\n" + json.dumps(forged) + "\n", encoding="utf-8"
    )
    done = await _import(uow, ring, second, "jsonl")
    assert (done.added, done.present, done.bad) == (1, 1, [])
    (got,) = await _read_all(uow, [child])
    assert got == _expected(child)
    assert await uow.read(lambda r: r.registry.wards(stranger_id)) == []
    child_id = child.demographics.personal_id
    documents = await uow.read(lambda r: r.registry.documents(child_id))
    assert sorted(documents, key=repr) == sorted(child.documents, key=repr)


@pytest.mark.parametrize("chunk_bytes", [CHUNK_BYTES, 1], ids=["one-chunk", "line-a-chunk"])
@pytest.mark.asyncio
async def test_a_line_without_end_is_a_bad_row_never_held_whole(
    uow: SqlUnitOfWork, ring: KeyRing, tmp_path: Path, chunk_bytes: int
) -> None:
    """A damaged file (or a binary one given by mistake): 24 MB without a
    line end between two good rows. Before, finding the chunk's end and
    reading the chunk each held the whole line (a no-newline file of
    gigabytes would have been read into memory twice)."""
    first, last = jsonl_lines(PEOPLE[:2]).splitlines()
    junk = b"\x00" * (24 << 20)
    path = tmp_path / "damaged.jsonl"
    path.write_bytes(f"{first}\n".encode() + junk + f"\n{last}\n".encode())
    tracemalloc.start()
    try:
        done = await _import(uow, ring, path, "jsonl", chunk_bytes=chunk_bytes)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [(b.line, b.field, b.reason) for b in done.bad] == [
        (2, "row", f"longer than {MAX_LINE_BYTES} bytes")
    ]
    assert (done.rows, done.added) == (3, 2)
    assert peak < len(junk) // 4, f"{peak} bytes at the peak"


@pytest.mark.asyncio
async def test_a_csv_file_without_line_ends_is_refused_unread(
    uow: SqlUnitOfWork, ring: KeyRing, tmp_path: Path
) -> None:
    path = tmp_path / "binary.csv"
    path.write_bytes(b"\x00" * (24 << 20))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="no header"):
            await _import(uow, ring, path, "csv")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < (24 << 20) // 4, f"{peak} bytes at the peak"


@pytest.mark.parametrize("chunk_bytes", [CHUNK_BYTES, 1], ids=["one-chunk", "line-a-chunk"])
@pytest.mark.asyncio
async def test_a_second_row_of_one_id_number_is_a_bad_row_and_adds_nothing(
    uow: SqlUnitOfWork, ring: KeyRing, tmp_path: Path, chunk_bytes: int
) -> None:
    child = next(p for p in PEOPLE if age_on(p.demographics.birth_date, TODAY) < 14)
    parents = [p for p in PEOPLE if p.demographics.personal_id in child.guardians]
    stranger = next(p for p in PEOPLE if p not in parents and p is not child and not p.guardians)
    stranger_id = stranger.demographics.personal_id
    again = {**person_record(child), "full_name": "Ai Đó", "guardians": [stranger_id]}
    path = tmp_path / "twice.jsonl"
    path.write_text(
        jsonl_lines([*parents, child, stranger]) + json.dumps(again) + "\n", encoding="utf-8"
    )
    done = await _import(uow, ring, path, "jsonl", chunk_bytes=chunk_bytes)
    first, last = len(parents) + 1, len(parents) + 3
    assert [(b.line, b.field, b.reason) for b in done.bad] == [
        (last, "personal_id", f"the same ID number as line {first}")
    ]
    assert (done.rows, done.added, done.present) == (last, last - 1, 0)
    (got,) = await _read_all(uow, [child])
    assert got == _expected(child)
    assert await uow.read(lambda r: r.registry.wards(stranger_id)) == []


@pytest.mark.asyncio
async def test_workers_split_the_file_and_agree_with_one_process(
    ring: KeyRing, sqlite_template: Path, tmp_path: Path
) -> None:
    # How the file is split does not depend on the database: SQLite alone.
    shutil.copyfile(sqlite_template, tmp_path / "eid.db")
    protection = DataProtection(FieldCipher(ring), KeyedHasher(ring.hmac_key))
    uow = SqlUnitOfWork(f"sqlite:///{tmp_path / 'eid.db'}", protection)
    try:
        await _split_import(uow, ring, tmp_path)
    finally:
        uow.close()


async def _split_import(uow: SqlUnitOfWork, ring: KeyRing, tmp_path: Path) -> None:
    people = generate(9, 2_000, TODAY)
    lines = jsonl_lines(people).splitlines()
    lines.insert(1500, "{}")
    path = tmp_path / "many.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # ~80 chunks of 40 kB over 2 processes, in transactions of 300 people.
    done = await _import(uow, ring, path, "jsonl", workers=2, chunk_bytes=40_000, batch=300)
    assert (done.added, done.present) == (2_000, 0)
    assert [(b.line, b.field) for b in done.bad] == [(1501, "personal_id")]
    sample = people[::97]
    assert await _read_all(uow, sample) == [_expected(p) for p in sample]


@pytest.mark.asyncio
async def test_generate_writes_a_file_that_import_reads_back(
    uow: SqlUnitOfWork, ring: KeyRing, tmp_path: Path
) -> None:
    for fmt in ("jsonl", "csv"):
        out = tmp_path / f"made.{fmt}"
        made = await generate_registry(
            count=len(PEOPLE),
            seed=5,
            as_of=TODAY,
            out=out,
            fmt=fmt,
            uow=None,
            ring=None,
            workers=0,
            console=QUIET,
        )
        assert made.file_bytes == out.stat().st_size
        if fmt == "jsonl":
            assert out.read_text("utf-8") == jsonl_lines(PEOPLE)
        else:
            assert out.read_text("utf-8") == csv_header() + csv_lines(PEOPLE)
    done = await _import(uow, ring, tmp_path / "made.csv", "csv")
    assert (done.added, done.bad) == (len(PEOPLE), [])
    again = await _import(uow, ring, tmp_path / "made.jsonl", "jsonl")
    assert (again.added, again.present, again.bad) == (0, len(PEOPLE), [])
    assert await _read_all(uow, PEOPLE[:40]) == [_expected(p) for p in PEOPLE[:40]]


def _orphans(url: str) -> list[str]:
    """Guardian links and documents whose person the registry does not hold."""
    engine = create_engine(url)
    queries = {
        "child": "SELECT count(*) FROM registry_guardians WHERE child_index NOT IN"
        " (SELECT personal_id_index FROM registry_citizens)",
        "guardian": "SELECT count(*) FROM registry_guardians WHERE guardian_index NOT IN"
        " (SELECT personal_id_index FROM registry_citizens)",
        "document": "SELECT count(*) FROM registry_documents WHERE holder_index NOT IN"
        " (SELECT personal_id_index FROM registry_citizens)",
    }
    try:
        with engine.connect() as connection:
            return [name for name, q in queries.items() if connection.execute(text(q)).scalar()]
    finally:
        engine.dispose()


# Enough people for four foreigners.
CROWD = generate(7, 1_000, TODAY)


def _adults_with_documents() -> list[RegistryPerson]:
    return [p for p in CROWD if p.documents and age_on(p.demographics.birth_date, TODAY) >= 18]


def _children() -> list[RegistryPerson]:
    return [p for p in CROWD if age_on(p.demographics.birth_date, TODAY) < 14]


# Whole file in one chunk and one batch, or every line its own chunk and batch
# (what arrives later then lands in a later transaction).
CHUNKINGS = pytest.mark.parametrize(
    ("chunk_bytes", "batch"),
    [(CHUNK_BYTES, 100_000), (1, 1)],
    ids=["one-chunk-one-batch", "a-line-a-chunk-and-a-batch"],
)


@CHUNKINGS
@pytest.mark.asyncio
async def test_a_row_with_a_document_or_passport_another_person_holds_is_refused_whole(
    uow: SqlUnitOfWork,
    ring: KeyRing,
    database_url: str,
    tmp_path: Path,
    chunk_bytes: int,
    batch: int,
) -> None:
    """Before, such a row was dropped without a word: the person was loaded
    without the document (and could never get it from a corrected file: a
    person present is not updated), and of two people with one passport the
    one whose blind index sorted first was kept, whichever line it was on,
    the other counted 'already present'."""
    holder, thief, copier, early, *_ = _adults_with_documents()
    foreigners = [p for p in CROWD if p.passport is not None]
    visitor, impostor, first_visitor, second_visitor = foreigners[:4]
    ward = _children()[0]
    first = tmp_path / "first.jsonl"
    first.write_text(jsonl_lines([holder, visitor]), encoding="utf-8")
    assert (await _import(uow, ring, first, "jsonl")).bad == []
    holder_document = person_record(holder)["documents"][0]
    early_document = person_record(early)["documents"][0]
    rows = [
        {**person_record(thief), "documents": [holder_document]},  # held in the registry
        {**person_record(impostor), "passport": person_record(visitor)["passport"]},
        person_record(early),
        person_record(first_visitor),
        {**person_record(copier), "documents": [early_document]},  # as line 3 has
        {**person_record(second_visitor), "passport": person_record(first_visitor)["passport"]},
        {**person_record(ward), "guardians": [thief.demographics.personal_id]},
    ]
    second = tmp_path / "second.jsonl"
    second.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    done = await _import(uow, ring, second, "jsonl", chunk_bytes=chunk_bytes, batch=batch)
    assert [(b.line, b.field, b.reason) for b in done.bad] == [
        (1, "documents.number", "another person holds a document of this type and number"),
        (2, "passport.number", "another person holds this passport"),
        (5, "documents.number", "the same document as line 3"),
        (6, "passport.number", "the same passport as line 4"),
        (7, "guardians", "the guardian on line 1 was refused"),
    ]
    assert (done.rows, done.added, done.present) == (7, 2, 0)
    refused = [thief, impostor, copier, second_visitor, ward]
    assert await _read_all(uow, refused) == [None] * len(refused)
    assert await _read_all(uow, [holder, visitor, early, first_visitor]) == [
        _expected(p) for p in (holder, visitor, early, first_visitor)
    ]
    holder_id = holder.demographics.personal_id
    documents = await uow.read(lambda r: r.registry.documents(holder_id))
    assert sorted(documents, key=repr) == sorted(holder.documents, key=repr)
    assert _orphans(database_url) == []
    # Corrected, the same rows load whole: nothing of them was written.
    fixed = tmp_path / "fixed.jsonl"
    fixed.write_text(jsonl_lines([thief, impostor, copier]), encoding="utf-8")
    again = await _import(uow, ring, fixed, "jsonl")
    assert (again.added, again.bad) == (3, [])
    thief_id = thief.demographics.personal_id
    documents = await uow.read(lambda r: r.registry.documents(thief_id))
    assert sorted(documents, key=repr) == sorted(thief.documents, key=repr)


@CHUNKINGS
@pytest.mark.asyncio
async def test_a_child_whose_guardian_is_refused_later_is_refused_too(
    uow: SqlUnitOfWork,
    ring: KeyRing,
    database_url: str,
    tmp_path: Path,
    chunk_bytes: int,
    batch: int,
) -> None:
    """Before, a child whose guardian's row was in the file was written at
    once, even when that row was refused afterwards (itself a child waiting
    for a guardian who never came): the registry held a child whose guardian
    it did not hold."""
    young, elder, ward, older_ward = _children()[:4]
    parent = next(p for p in _adults_with_documents())
    nowhere = "001190000001"
    rows = [
        {**person_record(ward), "guardians": [young.demographics.personal_id]},
        {**person_record(young), "guardians": [nowhere]},  # refused at the end
        # A chain that does end in the file: line 3 -> line 4 -> line 5.
        {**person_record(older_ward), "guardians": [elder.demographics.personal_id]},
        {**person_record(elder), "guardians": [parent.demographics.personal_id]},
        {**person_record(parent), "guardians": []},
    ]
    path = tmp_path / "chain.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    done = await _import(uow, ring, path, "jsonl", chunk_bytes=chunk_bytes, batch=batch)
    assert [(b.line, b.field, b.reason) for b in done.bad] == [
        (1, "guardians", "the guardian on line 2 was refused"),
        (2, "guardians", GUARDIAN_UNKNOWN),
    ]
    assert (done.rows, done.added, done.present) == (5, 3, 0)
    assert await _read_all(uow, [ward, young]) == [None, None]
    elder_id = elder.demographics.personal_id
    assert await uow.read(lambda r: r.registry.wards(elder_id)) == [
        older_ward.demographics.personal_id
    ]
    assert _orphans(database_url) == []


def _chain(length: int, top: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of children each naming the next line's as guardian, the last
    naming `top` (not among the rows)."""
    ids = [f"001315{n:06d}" for n in range(length)]  # girls born in 2015
    return [
        {
            "personal_id": ids[n],
            "full_name": "Nguyễn Thị Lan",
            "birth_date": "2015-06-01",
            "gender": "female",
            "guardians": [ids[n + 1] if n + 1 < length else top["personal_id"]],
        }
        for n in range(length)
    ]


@pytest.mark.parametrize("top_refused", ["nowhere", "on-writing"])
@pytest.mark.asyncio
async def test_a_long_guardian_chain_is_refused_in_linear_time(
    uow: SqlUnitOfWork, ring: KeyRing, database_url: str, tmp_path: Path, top_refused: str
) -> None:
    """A file (damaged or hostile) of 12,000 children, each the guardian of
    the one on the line before, whose first guardian is refused: every row is
    refused, with its reason, in seconds. The chain was resolved a link per
    pass over all the rows (quadratic: about a minute here, hours for a
    million lines)."""
    holder = _adults_with_documents()[0]
    top = person_record(next(p for p in _adults_with_documents() if p is not holder))
    rows = _chain(12_000, top)
    if top_refused == "on-writing":
        first = tmp_path / "first.jsonl"
        first.write_text(jsonl_lines([holder]), encoding="utf-8")
        assert (await _import(uow, ring, first, "jsonl")).bad == []
        rows.append({**top, "documents": [person_record(holder)["documents"][0]]})
    path = tmp_path / "chain.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    started = time.monotonic()
    done = await _import(uow, ring, path, "jsonl")
    seconds = time.monotonic() - started
    assert (done.rows, done.added, len(done.bad)) == (len(rows), 0, len(rows))
    assert done.bad[0] == BadRow(1, "guardians", "the guardian on line 2 was refused")
    assert seconds < 20, f"{seconds:.1f} s"
    assert _orphans(database_url) == []


@pytest.mark.asyncio
async def test_bulk_loads_take_turns_on_postgresql(
    uow: SqlUnitOfWork, ring: KeyRing, database_url: str, tmp_path: Path
) -> None:
    """Each batch checks passports, documents and guardians against what the
    registry holds, then writes: two imports at once on PostgreSQL could each
    pass the check before the other committed (one passport for two people, a
    guardian link to a person the other wrote). A batch waits for the lock
    another load holds, writes nothing meanwhile, and goes on once it is free."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite's one writer: loads take turns already")
    path = tmp_path / "registry.jsonl"
    path.write_text(jsonl_lines(PEOPLE[:40]), encoding="utf-8")
    engine = create_engine(database_url)
    try:
        with engine.connect() as other_load:
            other_load.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": REGISTRY_LOAD_LOCK})
            loading = asyncio.create_task(_import(uow, ring, path, "jsonl"))
            waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            deadline = time.monotonic() + 30
            while not other_load.execute(text(waiting)).scalar_one():
                assert time.monotonic() < deadline, "the import never waited for the lock"
                assert not loading.done(), "the import ended without waiting"
                await asyncio.sleep(0.01)
            assert _dump(database_url) == []
            other_load.rollback()  # the other load ends
        done = await asyncio.wait_for(loading, 60)
    finally:
        engine.dispose()
    assert (done.added, done.bad) == (40, [])
