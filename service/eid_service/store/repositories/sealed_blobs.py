"""Every sealed blob in the database, for `eid-server rotate-keys`: the
columns that hold them, the context each blob is bound to (spelt exactly as
the repository that seals it spells it: a blob only opens with its own), and
re-encryption under the active key, one page of rows per transaction.

A row is due when one of its blobs names another key than the active one
(the key id is in each blob's header, so the filter is a prefix comparison
the database does), for the registry's tables when its `key_id` column
does, or when it still holds a value in clear that is now sealed (gender,
written in clear before revision 0020): that value is sealed into its
column under the active key and the clear column set to NULL. Each row is
updated only if its blobs (and clear values) are still the ones read (a
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
    # (sealed column, clear column): values rows written before the sealed
    # column existed hold in clear; sealed into it, the clear one set NULL.
    clear: tuple[tuple[str, str], ...] = ()


SEALED_TABLES: tuple[SealedTable, ...] = (
    # repositories/registry.py: _context, _document_context
    SealedTable(
        "registry_citizens",
        ("personal_id_index",),
        (
            "personal_id_enc",
            "full_name_enc",
            "birth_date_enc",
            "gender_enc",
            "death_date_enc",
            "passport_enc",
            "portrait_enc",
            "fingerprints_enc",
        ),
        lambda k, c: f"registry:{_hex(k[0])}:{_field(c)}",
        key_id="key_id",
        clear=(("gender_enc", "gender"),),
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
            "gender_enc",
            "phone_enc",
            "email_enc",
            "nationality_enc",
        ),
        lambda k, c: f"account:{k[0]}:{_field(c)}",
        clear=(("gender_enc", "gender"),),
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


# What one UPDATE writes: the columns sealed again, the (sealed, clear)
# columns sealed from clear, whether the key id too.
_Shape = tuple[tuple[str, ...], tuple[tuple[str, str], ...], bool]


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
        again under the active key, and seals their values still in clear."""
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
        at_clear = width + len(spec.columns)
        clear_of = dict(spec.clear)
        page = Page(last=tuple(rows[-1][:width]), rows=len(rows))
        updates: dict[_Shape, list[tuple[Any, ...]]] = {}
        for row in rows:
            key = tuple(row[:width])
            blobs = row[width:at_clear]
            # sealed column -> the value its row holds in clear
            clear = dict(zip(clear_of, row[at_clear : at_clear + len(clear_of)], strict=True))
            changed: list[tuple[str, bytes, bytes]] = []
            # (sealed column, clear column, its blob, the clear value)
            sealed: list[tuple[str, str, bytes, Any]] = []
            whole = True  # every blob of the row opened
            for column, blob in zip(spec.columns, blobs, strict=True):
                if blob is None:
                    value = clear.get(column)
                    if value is not None:
                        new = cipher.encrypt(value, context=spec.context(key, column))
                        sealed.append((column, clear_of[column], new, value))
                    continue
                if bytes(blob).startswith(prefix):
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
            if not changed and not sealed and not (set_key_id and row[-1] != active):
                continue
            shape = (
                tuple(c for c, _, _ in changed),
                tuple((c, plain) for c, plain, _, _ in sealed),
                set_key_id,
            )
            values: list[Any] = [new for _, new, _ in changed]
            values += [blob for _, _, blob, _ in sealed]
            if set_key_id:
                values.append(active)
            updates.setdefault(shape, []).append(
                (
                    *values,
                    *key,
                    *(old for _, _, old in changed),
                    *(value for _, _, _, value in sealed),
                )
            )
            page.blobs += len(changed) + len(sealed)
        for shape, batch in updates.items():
            page.updated += self._db.many(_update_sql(spec, shape), batch)
        return page

    def _prefix_length(self) -> int:
        return len(blob_prefix(self._p.cipher.active_key_id))

    def _filter_params(self) -> dict[str, Any]:
        active = self._p.cipher.active_key_id
        return {"prefix": blob_prefix(active), "active": active}


def _due(spec: SealedTable, prefix_length: int) -> str:
    tests = [f"substr({c}, 1, {prefix_length}) <> :prefix" for c in spec.columns]
    tests += [f"({c} IS NULL AND {plain} IS NOT NULL)" for c, plain in spec.clear]
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
        columns = ", ".join((*spec.columns, *(plain for _, plain in spec.clear)))
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


def _update_sql(spec: SealedTable, shape: _Shape) -> Rows:
    """The UPDATE of the rows of one shape: blobs sealed again (each only if
    still the one read), values sealed from clear (only if still in clear and
    the same), and the key id."""
    cache = ("update", spec.table, shape)
    if cache not in _SQL:
        columns, sealed, set_key_id = shape
        sets = [f"{c} = ?" for c in columns]
        sets += [f"{c} = ?, {plain} = NULL" for c, plain in sealed]
        if set_key_id and spec.key_id is not None:
            sets.append(f"{spec.key_id} = ?")
        conditions = [f"{k} = ?" for k in spec.key] + [f"{c} = ?" for c in columns]
        conditions += [f"{c} IS NULL AND {plain} = ?" for c, plain in sealed]
        _SQL[cache] = Rows(
            f"UPDATE {spec.table} SET {', '.join(sets)}"  # noqa: S608 (constants)
            f" WHERE {' AND '.join(conditions)}"
        )
    sql: Rows = _SQL[cache]
    return sql
