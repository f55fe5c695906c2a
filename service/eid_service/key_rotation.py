"""Moving every sealed blob to the active encryption key (`eid-server
rotate-keys`), in pages of short transactions beside running servers.

A pass walks each table in key order, one page per transaction (read the
due rows, seal their blobs again, seal what rows written before it was
sealed still hold in clear (gender, before revision 0020), write back only
what did not change meanwhile). Rows written under an old key while the pass ran (by a server
that had not yet reloaded the ring), or changed under it, are caught by the
next pass; passes stop when nothing is due any more, or after MAX_PASSES.
Stopped at any point, a run resumes where the data says: a blob under the
active key is not due.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eid_service.store.repositories.sealed_blobs import (
    SEALED_TABLES,
    Page,
    SealedBlobs,
    SealedTable,
)
from eid_service.store.uow import SqlRepositories, SqlUnitOfWork
from eid_service.use_cases.ports import Repositories

MAX_PASSES = 5
DEFAULT_PAGE = 500


def _blobs(r: Repositories) -> SealedBlobs:
    assert isinstance(r, SqlRepositories), "key rotation runs on the SQL store"
    return r.sealed_blobs


def _due(spec: SealedTable) -> Callable[[Repositories], int]:
    return lambda r: _blobs(r).due(spec)


def _page(
    spec: SealedTable, after: tuple[Any, ...] | None, size: int
) -> Callable[[Repositories], Page]:
    return lambda r: _blobs(r).reencrypt_page(spec, after, size)


async def due_rows(uow: SqlUnitOfWork) -> dict[str, int]:
    """Rows with a blob (or a key id) not under the active key, or a value
    still in clear that is now sealed, per table."""
    return {spec.table: await uow.read(_due(spec)) for spec in SEALED_TABLES}


@dataclass
class Rotation:
    """What a run did."""

    passes: int = 0
    blobs: dict[str, int] = field(default_factory=dict)  # (re-)sealed, per table
    rows: dict[str, int] = field(default_factory=dict)  # written, per table
    unreadable: dict[str, int] = field(default_factory=dict)  # "table.column" -> blobs
    left: dict[str, int] = field(default_factory=dict)  # rows still due, per table

    @property
    def done(self) -> bool:
        return not any(self.left.values())


async def reencrypt_all(
    uow: SqlUnitOfWork,
    *,
    page: int = DEFAULT_PAGE,
    progress: Callable[[str, int], None] | None = None,
) -> Rotation:
    """Re-seals every due blob under the active key and seals the values
    still in clear; `progress(table, rows)` after each page."""
    result = Rotation()
    for _ in range(MAX_PASSES):
        result.passes += 1
        unreadable: dict[str, int] = {}
        before = sum(result.rows.values())
        for spec in SEALED_TABLES:
            await _pass(uow, spec, page, result, unreadable, progress)
        # Blobs that do not open stay due: counted once, from the last pass.
        result.unreadable = unreadable
        result.left = await due_rows(uow)
        if result.done or sum(result.rows.values()) == before:
            break  # nothing due, or nothing more this run can do
    return result


async def _pass(
    uow: SqlUnitOfWork,
    spec: SealedTable,
    page: int,
    result: Rotation,
    unreadable: dict[str, int],
    progress: Callable[[str, int], None] | None,
) -> None:
    after = None
    while True:
        done = await uow.atomically(_page(spec, after, page), long=True)
        if done.last is None:
            return
        after = done.last
        result.blobs[spec.table] = result.blobs.get(spec.table, 0) + done.blobs
        result.rows[spec.table] = result.rows.get(spec.table, 0) + done.updated
        for column, count in done.unreadable.items():
            name = f"{spec.table}.{column}"
            unreadable[name] = unreadable.get(name, 0) + count
        if progress is not None:
            progress(spec.table, done.rows)
