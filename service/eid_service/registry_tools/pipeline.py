"""Bulk loads of the population registry: `eid-server registry generate` and
`eid-server registry import`.

The work is split by what it costs. Making people (or parsing and checking
rows), then sealing every field (AES-GCM) and computing the blind indexes
(HMAC) is CPU-bound Python: it runs in chunks on worker processes, one per
core. Writing is SQLite's single writer: the main process only takes sealed
rows, in file order, and writes them with a few executemany statements per
transaction of `batch` people, through the unit of work (so a running server
shares the database as usual, each transaction holding the write lock for a
fraction of a second per thousand people). While one transaction commits,
the workers make the next chunks. Every commit is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from multiprocessing.pool import AsyncResult, Pool
from pathlib import Path
from typing import BinaryIO, TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from eid_service.domain.citizen import MIN_SELF_REGISTRATION_AGE, age_on
from eid_service.domain.registry_person import PersonKind
from eid_service.registry_tools.generator import chunks, generate_chunk
from eid_service.registry_tools.records import (
    MAX_LINE_BYTES,
    BadRow,
    csv_header,
    csv_lines,
    jsonl_lines,
    parse_header,
    read_chunk,
)
from eid_service.security.field_cipher import FieldCipher
from eid_service.security.keyed_hash import KeyedHasher
from eid_service.security.keys import KeyRing, key_ring_from_json, key_ring_to_json
from eid_service.store.protection import DataProtection
from eid_service.store.repositories.registry import (
    PopulationRegistry,
    Refusal,
    Refused,
    SealedPeople,
    Written,
    seal_people,
)
from eid_service.store.uow import SqlUnitOfWork
from eid_service.use_cases.ports import Repositories

# People per write transaction (about 2 s of holding SQLite's write lock).
DEFAULT_BATCH = 100_000
# Bytes of a registry file read as one task (whole lines).
CHUNK_BYTES = 4 << 20
T = TypeVar("T")
R = TypeVar("R")

# A worker process's keys (set by _init_worker; in-process runs set it too).
_protection: DataProtection | None = None


def _use_keys(ring_json: str | None) -> None:
    global _protection  # one per process, set once
    if ring_json is not None:
        ring = key_ring_from_json(ring_json)
        _protection = DataProtection(FieldCipher(ring), KeyedHasher(ring.hmac_key))


def _init_worker(ring_json: str | None) -> None:
    # Chunks make millions of small objects and no reference cycles: the
    # cyclic collector would scan them again and again (it doubled the time).
    gc.disable()
    # Ctrl-C reaches the whole process group: the parent stops the pool; a
    # worker's own KeyboardInterrupt would only print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _use_keys(ring_json)


def _sealer() -> DataProtection:
    assert _protection is not None, "no keys in this process"
    return _protection


def _registry(r: Repositories) -> PopulationRegistry:
    registry = r.registry
    assert isinstance(registry, PopulationRegistry), "bulk loads need the SQL store"
    return registry


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """The main process holds a batch's rows (tuples by the million, no cycles)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class Runner:
    """Runs tasks in order: on `workers` processes, or here when 0. At most a
    few results wait for the caller at any time (memory stays flat)."""

    def __init__(self, workers: int, ring: KeyRing | None) -> None:
        ring_json = None if ring is None else key_ring_to_json(ring)
        self._pool: Pool | None = None
        self.workers = workers
        if workers > 0:
            # spawn, not fork: the parent may run threads (progress, the store).
            context = multiprocessing.get_context("spawn")
            self._pool = context.Pool(workers, _init_worker, (ring_json,))
        else:
            _use_keys(ring_json)

    async def map(self, func: Callable[[T], R], tasks: Iterable[T]) -> AsyncIterator[R]:
        if self._pool is None:
            for task in tasks:
                yield func(task)
                await asyncio.sleep(0)  # let a commit in flight proceed
            return
        window: deque[AsyncResult[R]] = deque()
        for task in tasks:
            window.append(self._pool.apply_async(func, (task,)))
            if len(window) > 2 * self.workers:
                yield await _result(window.popleft())
        while window:
            yield await _result(window.popleft())

    def close(self, *, failed: bool = False) -> None:
        if self._pool is not None:
            if failed:
                self._pool.terminate()
            else:
                self._pool.close()
            self._pool.join()


async def _result(pending: AsyncResult[R]) -> R:
    # Waited for in short steps: a thread blocked in get() on a task whose
    # worker was stopped (Ctrl-C) never returns, and asyncio.run waits for it.
    while not pending.ready():
        await asyncio.to_thread(pending.wait, 0.2)
    return pending.get()


class Loader:
    """Writes sealed people in transactions of `batch`, one commit in flight
    while the next batch fills."""

    def __init__(self, uow: SqlUnitOfWork, batch: int) -> None:
        self._uow = uow
        self._batch = batch
        self._pending = SealedPeople()
        self._inflight: asyncio.Task[Written] | None = None
        self._tuned = False
        self.added = 0
        self.written = 0
        self.refused: dict[bytes, Refused] = {}  # new people the registry did not write

    async def add(self, sealed: SealedPeople) -> None:
        self._pending.extend(sealed)
        if len(self._pending) >= self._batch:
            await self._start()

    async def _start(self) -> None:
        await self._wait()
        batch, self._pending = self._pending, SealedPeople()
        batch.sort()
        tune = not self._tuned
        self._tuned = True

        def write(r: Repositories) -> Written:
            registry = _registry(r)
            if tune:
                registry.bulk_load_mode(True)
            return registry.put_sealed(batch)

        self._inflight = asyncio.create_task(self._uow.atomically(write, long=True))
        self.written += len(batch)

    async def _wait(self) -> None:
        if self._inflight is not None:
            task, self._inflight = self._inflight, None
            written = await task
            self.added += written.added
            self.refused.update(written.refused)

    async def finish(self) -> None:
        if len(self._pending):
            await self._start()
        await self._wait()
        await self._untune()

    async def cancel(self) -> None:
        """After a failure: let a commit in flight end (it is whole or nothing)."""
        if self._inflight is not None:
            task, self._inflight = self._inflight, None
            with contextlib.suppress(Exception):  # the failure reported is the first one
                await task
        with contextlib.suppress(Exception):
            await self._untune()

    async def _untune(self) -> None:
        if self._tuned:
            self._tuned = False
            await self._uow.atomically(lambda r: _registry(r).bulk_load_mode(False), long=True)


def progress_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]:>10,} people"),
        TextColumn("{task.fields[rate]:>8,.0f}/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def _sorted(sealed: SealedPeople) -> SealedPeople:
    sealed.sort()  # here, where it is parallel; the writer's sort then merges runs
    return sealed


# -- generate --------------------------------------------------------------


@dataclass(frozen=True)
class GenerateTask:
    seed: int
    chunk: int
    count: int
    as_of: date
    fmt: str | None  # csv, jsonl: the chunk's lines too
    seal: bool


@dataclass
class GeneratedChunk:
    text: str | None
    sealed: SealedPeople | None
    people: int
    foreigners: int
    children: int  # under 14
    documents: int


def generate_task(task: GenerateTask) -> GeneratedChunk:
    people = generate_chunk(task.seed, task.chunk, task.count, task.as_of)
    text = None
    if task.fmt == "jsonl":
        text = jsonl_lines(people)
    elif task.fmt == "csv":
        text = csv_lines(people)
    return GeneratedChunk(
        text=text,
        sealed=_sorted(seal_people(_sealer(), people)) if task.seal else None,
        people=len(people),
        foreigners=sum(p.kind is PersonKind.FOREIGNER for p in people),
        children=sum(
            age_on(p.demographics.birth_date, task.as_of) < MIN_SELF_REGISTRATION_AGE
            for p in people
        ),
        documents=sum(len(p.documents) for p in people),
    )


@dataclass
class Generated:
    people: int = 0
    foreigners: int = 0
    children: int = 0
    documents: int = 0
    added: int = 0
    # Not written: another person holds their passport or a document (a
    # registry generated with another seed), or a guardian of theirs is refused.
    refused: int = 0
    file_bytes: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.people / self.seconds if self.seconds else 0.0


async def generate_registry(
    *,
    count: int,
    seed: int,
    as_of: date,
    out: Path | None,
    fmt: str | None,
    uow: SqlUnitOfWork | None,
    ring: KeyRing | None,
    workers: int,
    batch: int = DEFAULT_BATCH,
    console: Console,
) -> Generated:
    """Makes `count` people; writes them to `out` (as `fmt`) and/or into the
    registry of `uow` (sealed with `ring`)."""
    with _no_cyclic_gc():
        return await _generate(count, seed, as_of, out, fmt, uow, ring, workers, batch, console)


async def _generate(
    count: int,
    seed: int,
    as_of: date,
    out: Path | None,
    fmt: str | None,
    uow: SqlUnitOfWork | None,
    ring: KeyRing | None,
    workers: int,
    batch: int,
    console: Console,
) -> Generated:
    started = time.perf_counter()
    total = chunks(count)
    runner = Runner(min(workers, total - 1), ring if uow is not None else None)
    loader = None if uow is None else Loader(uow, batch)
    done = Generated()
    failed = True
    sink = None if out is None else out.open("w", encoding="utf-8", newline="")
    try:
        if sink is not None and fmt == "csv":
            sink.write(csv_header())
        tasks = (
            GenerateTask(seed, c, count, as_of, fmt if sink else None, loader is not None)
            for c in range(total)
        )
        with progress_bar(console) as progress:
            bar = progress.add_task("generating", total=count, rows=0, rate=0.0)
            async for result in runner.map(generate_task, tasks):
                if sink is not None and result.text is not None:
                    sink.write(result.text)
                if loader is not None and result.sealed is not None:
                    await loader.add(result.sealed)
                done.people += result.people
                done.foreigners += result.foreigners
                done.children += result.children
                done.documents += result.documents
                rate = done.people / (time.perf_counter() - started)
                progress.update(bar, advance=result.people, rows=done.people, rate=rate)
            if loader is not None:
                await loader.finish()
                done.added = loader.added
                done.refused = len(loader.refused)
        failed = False
    finally:
        if failed and loader is not None:
            await loader.cancel()
        runner.close(failed=failed)
        if sink is not None:
            sink.flush()
            os.fsync(sink.fileno())
            done.file_bytes = sink.tell()
            sink.close()
    done.seconds = time.perf_counter() - started
    return done


# -- import ----------------------------------------------------------------


@dataclass(frozen=True)
class ReadTask:
    path: str
    start: int
    end: int
    fmt: str
    header: list[str] | None
    today: date


@dataclass
class ReadResult:
    sealed: SealedPeople
    lines: list[int]  # of each person in `sealed`, counted from 0 in the chunk
    guardians: list[list[bytes]]  # blind indexes of each person's guardians
    bad: list[BadRow]
    repeated: list[tuple[int, int]]  # lines whose ID number an earlier line of the chunk has
    line_count: int
    size: int


# How much of a line's end is looked for at a time: no line is held whole.
_SCAN_BYTES = 1 << 16


def _past_line_end(f: BinaryIO, limit: int | None = None) -> tuple[int, bool]:
    """Moves `f` past the end of the line it stands in (at most `limit`
    bytes on), a block at a time; the bytes passed over, and whether a line
    end was among them."""
    passed = 0
    while limit is None or passed < limit:
        block = f.readline(_SCAN_BYTES if limit is None else min(_SCAN_BYTES, limit - passed))
        passed += len(block)
        if block.endswith(b"\n"):
            return passed, True
        if not block:
            break
    return passed, False


def read_span(f: BinaryIO, size: int) -> bytes:
    """`size` bytes from where `f` stands, each line longer than
    MAX_LINE_BYTES cut to its first MAX_LINE_BYTES + 1 (`read_chunk` refuses
    it by its length): a line without end, say a binary file given by
    mistake, is passed over, never read into memory whole."""
    parts: list[bytes] = []
    left = size
    while left > 0 and (line := f.readline(min(left, MAX_LINE_BYTES + 1))):
        left -= len(line)
        parts.append(line)
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            skipped, ended = _past_line_end(f, left)
            left -= skipped
            if ended:
                parts.append(b"\n")  # still one line: the lines after keep their numbers
    return b"".join(parts)


def read_task(task: ReadTask) -> ReadResult:
    with open(task.path, "rb") as f:
        f.seek(task.start)
        data = read_span(f, task.end - task.start)
    chunk = read_chunk(data, task.fmt, task.header, task.today, at_start=task.start == 0)
    # A person once in a chunk: the sealed guardian and document rows of two
    # rows of one ID number could not be told apart later.
    people, lines, repeated = [], [], []
    first: dict[str, int] = {}
    for person, line in zip(chunk.people, chunk.lines, strict=True):
        earlier = first.setdefault(person.demographics.personal_id, line)
        if earlier != line:
            repeated.append((line, earlier))
        else:
            people.append(person)
            lines.append(line)
    p = _sealer()
    return ReadResult(
        sealed=seal_people(p, people),  # in file order: lines[i] is citizens[i]'s
        lines=lines,
        guardians=[[p.hasher.blind_index(g) for g in person.guardians] for person in people],
        bad=chunk.bad,
        repeated=repeated,
        line_count=chunk.line_count,
        size=task.end - task.start,
    )


def chunk_bounds(
    path: Path, start: int, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[tuple[int, int]]:
    """Byte ranges of about `chunk_bytes` from `start`, each ending at a line's end."""
    size = path.stat().st_size
    with path.open("rb") as f:
        while start < size:
            f.seek(min(start + chunk_bytes, size))
            _past_line_end(f)
            end = min(f.tell(), size)
            yield start, end
            start = end


@dataclass
class Imported:
    rows: int = 0
    added: int = 0
    bad: list[BadRow] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def present(self) -> int:
        """Good rows whose person the registry held already."""
        return self.rows - len(self.bad) - self.added

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


GUARDIAN_UNKNOWN = "a guardian is neither in the registry nor in this file"
PASSPORT_HELD = "another person holds this passport"
DOCUMENT_HELD = "another person holds a document of this type and number"


def same_id_as(line: int) -> str:
    return f"the same ID number as line {line}"


def guardian_refused(line: int) -> str:
    return f"the guardian on line {line} was refused"


# What the registry's refusal of a row at write time is reported as.
_WRITE_REFUSALS = {
    Refusal.PASSPORT_HELD: ("passport.number", PASSPORT_HELD),
    Refusal.DOCUMENT_HELD: ("documents.number", DOCUMENT_HELD),
}


class _Admission:
    """Decides which rows of the file are written, and when.

    A person's second row in the file, and a row with a passport or a
    document an earlier row has, is a bad row (nothing of it written). A
    child whose guardians are not all admitted yet (in the registry, or
    rows of this file sent to be written) waits, rows and all, until the end
    of the file: so a guardian is written in the same batch as its ward or an
    earlier one, and a child whose guardian's row is refused is refused too.
    The registry checks again as it writes (`put_sealed`), against what it
    holds by then."""

    def __init__(self, uow: SqlUnitOfWork) -> None:
        self._uow = uow
        self.rows: dict[bytes, int] = {}  # the people of the file: their first line
        self.known: set[bytes] = set()  # guardians found in the registry
        self.unusable: set[bytes] = set()  # people of the file refused, or waiting
        self.passports: dict[bytes, int] = {}  # passport index: the line holding it
        # A document's number index (its type is in it): the line holding it.
        self.documents: dict[bytes, int] = {}
        self.waiting: list[tuple[int, bytes, SealedPeople, list[bytes]]] = []

    def _seen(self, index: bytes) -> bool:
        return (index in self.rows and index not in self.unusable) or index in self.known

    def _claim(self, line: int, passport: bytes | None, documents: list[bytes]) -> BadRow | None:
        """Why a row cannot have its passport or documents (an earlier line
        has one); else records them as this line's."""
        if passport is not None and self.passports.get(passport, line) != line:
            return BadRow(
                line, "passport.number", f"the same passport as line {self.passports[passport]}"
            )
        for key in documents:
            if self.documents.get(key, line) != line:
                return BadRow(
                    line, "documents.number", f"the same document as line {self.documents[key]}"
                )
        if passport is not None:
            self.passports[passport] = line
        for key in documents:
            self.documents[key] = line
        return None

    async def admit(self, result: ReadResult, first_line: int) -> tuple[SealedPeople, list[BadRow]]:
        """The rows of `result` that may be written now, and its rows refused."""
        bad = [
            BadRow(first_line + line, "personal_id", same_id_as(first_line + earlier))
            for line, earlier in result.repeated
        ]
        sealed = result.sealed
        people = sealed.citizens
        documents_of: dict[bytes, list[bytes]] = {}
        for d_row in sealed.documents:
            documents_of.setdefault(d_row[2], []).append(d_row[1])
        refused: set[bytes] = set()
        for i, row in enumerate(people):
            line = first_line + result.lines[i]
            earlier = self.rows.setdefault(row[0], line)
            problem = (
                BadRow(line, "personal_id", same_id_as(earlier))
                if earlier != line
                else self._claim(line, row[7], documents_of.get(row[0], []))
            )
            if problem is not None:
                refused.add(row[0])
                if earlier == line:  # this person's first row: no guardian
                    self.unusable.add(row[0])
                bad.append(problem)
        unknown = {
            g
            for i, gs in enumerate(result.guardians)
            if people[i][0] not in refused
            for g in gs
            if not self._seen(g)
        }
        if unknown:
            known = await self._uow.read(lambda r: {g for g in unknown if _registry(r).present(g)})
            self.known |= known
        # A child waits while a guardian is not admitted, a guardian who
        # waits (on this chunk's rows too) included: a worklist, a step a
        # link of a chain (a hostile file may hold one as long as the chunk).
        wards: dict[bytes, list[int]] = {}
        later: dict[bytes, int] = {}
        for i, gs in enumerate(result.guardians):
            index = people[i][0]
            if gs and index not in refused:
                for g in gs:
                    wards.setdefault(g, []).append(i)
                if not all(self._seen(g) for g in gs):
                    later[index] = i
        self.unusable.update(later)
        unadmitted = list(later)
        while unadmitted:
            for i in wards.get(unadmitted.pop(), ()):
                index = people[i][0]
                if index not in later:
                    later[index] = i
                    self.unusable.add(index)
                    unadmitted.append(index)
        if not later and not refused:
            return sealed, bad
        now = SealedPeople()
        held = {index: SealedPeople() for index in (*later, *refused)}
        for row in people:
            (held[row[0]].citizens if row[0] in held else now.citizens).append(row)
        for g_row in sealed.guardians:
            (held[g_row[0]].guardians if g_row[0] in held else now.guardians).append(g_row)
        for d_row in sealed.documents:
            (held[d_row[2]].documents if d_row[2] in held else now.documents).append(d_row)
        for index, i in later.items():
            line = first_line + result.lines[i]
            self.waiting.append((line, index, held[index], result.guardians[i]))
        return now, bad

    def settle(self) -> tuple[SealedPeople, list[BadRow]]:
        """At the end of the file: the children whose guardians were admitted
        (a guardian waiting too may be admitted first), and the others as bad
        rows."""
        admitted = SealedPeople()
        waiting, self.waiting = self.waiting, []
        # How many guardians each still waits for, and who waits for whom: a
        # row is admitted once its count is 0 (a step a link of a chain).
        missing = [sum(not self._seen(g) for g in gs) for _, _, _, gs in waiting]
        wards: dict[bytes, list[int]] = {}
        for n, (_, _, _, guardians) in enumerate(waiting):
            for g in guardians:
                if not self._seen(g):
                    wards.setdefault(g, []).append(n)
        ready = [n for n, count in enumerate(missing) if count == 0]
        while ready:
            _, index, rows, _ = waiting[ready.pop()]
            admitted.extend(rows)
            self.unusable.discard(index)
            for n in wards.get(index, ()):
                missing[n] -= 1
                if missing[n] == 0:
                    ready.append(n)
        bad = [
            BadRow(
                line, "guardians", self.missing_guardian(next(g for g in gs if not self._seen(g)))
            )
            for (line, _, _, gs), count in zip(waiting, missing, strict=True)
            if count
        ]
        return admitted, bad

    def missing_guardian(self, guardian: bytes | None) -> str:
        """Why a guardian is missing: their row was refused, or there is none."""
        line = None if guardian is None else self.rows.get(guardian)
        return GUARDIAN_UNKNOWN if line is None else guardian_refused(line)

    def refused_on_writing(self, refused: dict[bytes, Refused]) -> list[BadRow]:
        """The rows the registry refused as it wrote them."""
        bad = []
        for index, why in refused.items():
            line = self.rows[index]
            if why.why is Refusal.GUARDIAN_MISSING:
                bad.append(BadRow(line, "guardians", self.missing_guardian(why.guardian)))
            else:
                bad.append(BadRow(line, *_WRITE_REFUSALS[why.why]))
        return bad


async def import_registry(
    *,
    path: Path,
    fmt: str,
    uow: SqlUnitOfWork,
    ring: KeyRing,
    workers: int,
    today: date,
    batch: int = DEFAULT_BATCH,
    chunk_bytes: int = CHUNK_BYTES,
    console: Console,
) -> Imported:
    """Imports a registry file; ValueError if the file cannot be read at all
    (unknown CSV columns), bad rows are reported in the result."""
    with _no_cyclic_gc():
        return await _import(path, fmt, uow, ring, workers, today, batch, chunk_bytes, console)


async def _import(
    path: Path,
    fmt: str,
    uow: SqlUnitOfWork,
    ring: KeyRing,
    workers: int,
    today: date,
    batch: int,
    chunk_bytes: int,
    console: Console,
) -> Imported:
    started = time.perf_counter()
    header: list[str] | None = None
    start, first_line = 0, 1
    if fmt == "csv":
        with path.open("rb") as f:
            # Bounded: a file without line ends is no registry file, and is
            # not read whole to find that out.
            first = f.readline(MAX_LINE_BYTES + 1)
            header = parse_header(first)
            if not first.endswith(b"\n"):
                _past_line_end(f)
            start, first_line = f.tell(), 2
    bounds = list(chunk_bounds(path, start, chunk_bytes))
    size = bounds[-1][1] if bounds else start
    runner = Runner(min(workers, max(len(bounds) - 1, 0)), ring)
    loader = Loader(uow, batch)
    admission = _Admission(uow)
    done = Imported()
    failed = True
    try:
        tasks = (ReadTask(str(path), a, b, fmt, header, today) for a, b in bounds)
        with progress_bar(console) as progress:
            bar = progress.add_task("importing", total=size, rows=0, rate=0.0)
            progress.update(bar, advance=start)
            async for result in runner.map(read_task, tasks):
                done.rows += len(result.lines) + len(result.bad) + len(result.repeated)
                done.bad.extend(BadRow(first_line + b.line, b.field, b.reason) for b in result.bad)
                admitted, refused = await admission.admit(result, first_line)
                done.bad.extend(refused)
                await loader.add(admitted)
                first_line += result.line_count
                rate = done.rows / (time.perf_counter() - started)
                progress.update(bar, advance=result.size, rows=done.rows, rate=rate)
            admitted, late_bad = admission.settle()
            await loader.add(admitted)
            done.bad.extend(late_bad)
            await loader.finish()
        done.added = loader.added
        done.bad.extend(admission.refused_on_writing(loader.refused))
        failed = False
    finally:
        if failed:
            await loader.cancel()
        runner.close(failed=failed)
    done.bad.sort(key=lambda b: b.line)
    done.seconds = time.perf_counter() - started
    return done


def format_bad_row(bad: BadRow) -> str:
    return f"line {bad.line}: {bad.field}: {bad.reason}"


def write_bad_rows(bad: list[BadRow], path: Path) -> None:
    with path.open("w", encoding="utf-8") as f:
        f.write("line,field,reason\n")
        for b in bad:
            reason = b.reason.replace('"', '""')
            f.write(f'{b.line},{b.field},"{reason}"\n')
