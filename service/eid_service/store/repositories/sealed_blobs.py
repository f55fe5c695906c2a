"""Every sealed blob in the database, for `eid-server rotate-keys`: the
columns that hold them, the context each blob is bound to (spelt exactly as
the repository that seals it spells it: a blob only opens with its own), and
re-encryption under the active key, one page of rows per transaction.

A row is due when one of its blobs names another key than the active one
(the key id is in each blob's header, so the filter is a prefix comparison
the database does) or, for the registry's tables, when its `key_id` column
does. Each row is updated only if its blobs are still the ones read (a
server may have changed or erased one meanwhile): what changed is left for
the next pass, never overwritten with an older value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eid_service.security.field_cipher import DecryptionError, blob_prefix
from eid_service.store.repositories.base import Repository
from eid_service.store.sql import Rows, Sql


def _field(column: str) -> str:
    return column.removesuffix("_enc")


def _hex(value: Any) -> str:
    return bytes(value).hex()


@dataclass(frozen=True)
class SealedTable:
    """A table's sealed columns and how its rows bind their blobs."""

    table: str
    key: tuple[str, ...]
    columns: tuple[str, ...]
    # (the row's key values, the column) -> the blob's context
    context: Callable[[tuple[Any, ...], str], str] = field(repr=False)
    # A column naming the key of the row's blobs, kept up to date.
    key_id: str | None = None


SEALED_TABLES: tuple[SealedTable, ...] = (
    # repositories/registry.py: _context, _document_context
    SealedTable(
        "registry_citizens",
        ("personal_id_index",),
        (
            "personal_id_enc",
            "full_name_enc",
            "birth_date_enc",
            "death_date_enc",
            "passport_enc",
            "portrait_enc",
            "fingerprints_enc",
        ),
        lambda k, c: f"registry:{_hex(k[0])}:{_field(c)}",
        key_id="key_id",
    ),
    SealedTable(
        "registry_documents",
        ("doc_type", "number_index"),
        ("record_enc",),
        lambda k, c: f"registry-document:{k[0]}:{_hex(k[1])}",
        key_id="key_id",
    ),
    # repositories/accounts.py: f"account:{id}:{label}", the label the column's name
    SealedTable(
        "accounts",
        ("id",),
        (
            "personal_id_enc",
            "full_name_enc",
            "birth_date_enc",
            "phone_enc",
            "email_enc",
            "nationality_enc",
        ),
        lambda k, c: f"account:{k[0]}:{_field(c)}",
    ),
    # repositories/account_biometrics.py: _context
    SealedTable(
        "account_biometrics",
        ("account_id",),
        ("templates_enc",),
        lambda k, c: f"account:{k[0]}:biometrics",
        key_id="key_id",
    ),
    # repositories/account_documents.py: _context
    SealedTable(
        "account_documents",
        ("account_id", "doc_type", "number_index"),
        ("record_enc",),
        lambda k, c: f"account-document:{k[0]}:{k[1]}:{_hex(k[2])}",
        key_id="key_id",
    ),
    # repositories/sessions.py
    SealedTable("sessions", ("id",), ("device_enc",), lambda k, c: f"session:{k[0]}:device"),
    # repositories/approvals.py
    SealedTable(
        "approval_requests",
        ("id",),
        ("code_enc", "message_enc"),
        lambda k, c: f"approval:{k[0]}:{_field(c)}",
    ),
    # repositories/signing_keys.py: _context
    SealedTable(
        "signing_keys", ("key_id",), ("private_key_enc",), lambda k, c: f"signing-key:{k[0]}"
    ),
    # repositories/outbox.py
    SealedTable(
        "outbox",
        ("id",),
        ("destination_enc", "body_enc"),
        lambda k, c: f"outbox:{k[0]}:{_field(c)}",
    ),
    # repositories/idempotency.py: _context
    SealedTable(
        "idempotency_records",
        ("scope", "request_id"),
        ("response_enc",),
        lambda k, c: f"idempotency:{k[0]}:{k[1]}",
    ),
    # repositories/webhooks.py: _context
    SealedTable(
        "party_webhooks", ("party_id",), ("url_enc",), lambda k, c: f"party_webhooks:{k[0]}:url"
    ),
)


@dataclass
class Page:
    """What one page of a table did."""

    last: tuple[Any, ...] | None  # the key to go on after; None: the table is done
    rows: int = 0  # rows that were due
    blobs: int = 0  # blobs sealed again
    updated: int = 0  # rows written (the others changed meanwhile: the next pass)
    # (column, count) of blobs that could not be opened (unknown key, damaged)
    unreadable: dict[str, int] = field(default_factory=dict)


class SealedBlobs(Repository):
    """Finds and re-encrypts the blobs that are not under the active key."""

    def due(self, spec: SealedTable) -> int:
        """How many rows of the table are due."""
        row = self._db.one(_count_sql(spec, self._prefix_length()), self._filter_params())
        return 0 if row is None else int(row[0])

    def reencrypt_page(self, spec: SealedTable, after: tuple[Any, ...] | None, limit: int) -> Page:
        """Seals the due rows after `after` (in key order, at most `limit`)
        again under the active key."""
        params = self._filter_params()
        params["limit"] = limit
        if after is not None:
            params.update({f"k{i}": value for i, value in enumerate(after)})
        sql = _page_sql(spec, self._prefix_length(), after is not None)
        rows = self._db.all(sql, params)
        if not rows:
            return Page(last=None)
        cipher = self._p.cipher
        active = cipher.active_key_id
        prefix = params["prefix"]
        width = len(spec.key)
        page = Page(last=tuple(rows[-1][:width]), rows=len(rows))
        updates: dict[tuple[tuple[str, ...], bool], list[tuple[Any, ...]]] = {}
        for row in rows:
            key = tuple(row[:width])
            blobs = row[width : width + len(spec.columns)]
            changed: list[tuple[str, bytes, bytes]] = []
            whole = True  # every blob of the row opened
            for column, blob in zip(spec.columns, blobs, strict=True):
                if blob is None or bytes(blob).startswith(prefix):
                    continue
                old = bytes(blob)
                try:
                    new = cipher.reencrypt(old, context=spec.context(key, column))
                except DecryptionError:
                    page.unreadable[column] = page.unreadable.get(column, 0) + 1
                    whole = False
                    continue
                changed.append((column, new, old))
            # The row's key id says the active key once all its blobs are under it.
            set_key_id = spec.key_id is not None and whole
            if not changed and not (set_key_id and row[-1] != active):
                continue
            columns = tuple(c for c, _, _ in changed)
            values: list[Any] = [new for _, new, _ in changed]
            if set_key_id:
                values.append(active)
            updates.setdefault((columns, set_key_id), []).append(
                (*values, *key, *(old for _, _, old in changed))
            )
            page.blobs += len(changed)
        for (written, with_key_id), batch in updates.items():
            page.updated += self._db.many(_update_sql(spec, written, with_key_id), batch)
        return page

    def _prefix_length(self) -> int:
        return len(blob_prefix(self._p.cipher.active_key_id))

    def _filter_params(self) -> dict[str, Any]:
        active = self._p.cipher.active_key_id
        return {"prefix": blob_prefix(active), "active": active}


def _due(spec: SealedTable, prefix_length: int) -> str:
    tests = [f"substr({c}, 1, {prefix_length}) <> :prefix" for c in spec.columns]
    if spec.key_id is not None:
        tests.append(f"{spec.key_id} IS NULL OR {spec.key_id} <> :active")
    return "(" + " OR ".join(tests) + ")"


_SQL: dict[tuple[Any, ...], Any] = {}


def _count_sql(spec: SealedTable, prefix_length: int) -> Sql:
    cache = ("count", spec.table, prefix_length)
    if cache not in _SQL:
        _SQL[cache] = Sql(
            f"SELECT count(*) FROM {spec.table} WHERE {_due(spec, prefix_length)}"  # noqa: S608
        )
    sql: Sql = _SQL[cache]
    return sql


def _page_sql(spec: SealedTable, prefix_length: int, after: bool) -> Sql:
    cache = ("page", spec.table, prefix_length, after)
    if cache not in _SQL:
        keys = ", ".join(spec.key)
        columns = ", ".join(spec.columns)
        extra = f", {spec.key_id}" if spec.key_id else ""
        where = _due(spec, prefix_length)
        if after:
            bound = ", ".join(f":k{i}" for i in range(len(spec.key)))
            where = f"({keys}) > ({bound}) AND {where}"
        _SQL[cache] = Sql(
            f"SELECT {keys}, {columns}{extra} FROM {spec.table}"  # noqa: S608 (constants)
            f" WHERE {where} ORDER BY {keys} LIMIT :limit"
        )
    sql: Sql = _SQL[cache]
    return sql


def _update_sql(spec: SealedTable, columns: tuple[str, ...], set_key_id: bool) -> Rows:
    cache = ("update", spec.table, columns, set_key_id)
    if cache not in _SQL:
        sets = [f"{c} = ?" for c in columns]
        if set_key_id and spec.key_id is not None:
            sets.append(f"{spec.key_id} = ?")
        conditions = [f"{k} = ?" for k in spec.key] + [f"{c} = ?" for c in columns]
        _SQL[cache] = Rows(
            f"UPDATE {spec.table} SET {', '.join(sets)}"  # noqa: S608 (constants)
            f" WHERE {' AND '.join(conditions)}"
        )
    sql: Rows = _SQL[cache]
    return sql
