"""Documents linked to level-2 accounts: one row per account, type and keyed
index of the number (the registry's index, registry.py), the record sealed
(AES-GCM, bound to the account, the type and the index) with the key id it
was sealed with, when it was linked and by whom ("citizen" or an officer's
id). Nothing identifying is in clear."""

from __future__ import annotations

import json

from eid_service.domain.linked_document import LinkedDocument
from eid_service.domain.registry_person import DocumentType
from eid_service.store.repositories.base import Repository
from eid_service.store.repositories.registry import (
    document_number_index,
    document_record,
    read_document,
)
from eid_service.store.sql import Row, Sql
from eid_service.use_cases.ports import LinkedEntry

_COLUMNS = "doc_type, number_index, record_enc, linked_at, linked_by"
# A concurrent duplicate waits for the first and then inserts nothing.
_INSERT = Sql(
    "INSERT INTO account_documents"
    " (account_id, doc_type, number_index, record_enc, key_id, linked_at, linked_by)"
    " VALUES (:account_id, :doc_type, :number_index, :record, :key_id, :linked_at, :linked_by)"
    " ON CONFLICT DO NOTHING"
)
_OF_ACCOUNT = Sql(
    f"SELECT {_COLUMNS} FROM account_documents"  # noqa: S608 (constants)
    " WHERE account_id = :account_id ORDER BY doc_type, number_index"
)
_PAGE_AFTER = Sql(
    f"SELECT {_COLUMNS} FROM account_documents"  # noqa: S608 (constants)
    " WHERE account_id = :account_id"
    " AND (doc_type > :doc_type OR (doc_type = :doc_type AND number_index > :number_index))"
    " ORDER BY doc_type, number_index LIMIT :limit"
)
_PAGE_FIRST = Sql(
    f"SELECT {_COLUMNS} FROM account_documents"  # noqa: S608 (constants)
    " WHERE account_id = :account_id ORDER BY doc_type, number_index LIMIT :limit"
)
_ONE = Sql(
    f"SELECT {_COLUMNS} FROM account_documents"  # noqa: S608 (constants)
    " WHERE account_id = :account_id AND doc_type = :doc_type AND number_index = :number_index"
)
_DELETE = Sql(
    "DELETE FROM account_documents"
    " WHERE account_id = :account_id AND doc_type = :doc_type AND number_index = :number_index"
)


def _context(account_id: str, doc_type: str, number_index: bytes) -> str:
    return f"account-document:{account_id}:{doc_type}:{number_index.hex()}"


def entry_key(doc_type: str, number_index: bytes) -> str:
    """A linked document's place in its account's list (no number in it)."""
    return f"{doc_type}:{number_index.hex()}"


class AccountDocumentRepository(Repository):
    def add(self, account_id: str, document: LinkedDocument) -> bool:
        doc_type = document.doc_type.value
        index = document_number_index(self._p, document.doc_type, document.number)
        record = document_record(document)
        sealed = self._p.seal(
            json.dumps(record, ensure_ascii=False), _context(account_id, doc_type, index)
        )
        added = self._db.count(
            _INSERT,
            {
                "account_id": account_id,
                "doc_type": doc_type,
                "number_index": index,
                "record": sealed,
                "key_id": self._p.cipher.active_key_id,
                "linked_at": self._t(document.linked_at),
                "linked_by": document.linked_by,
            },
        )
        return added == 1

    def of_account(
        self, account_id: str, types: frozenset[DocumentType] | None = None
    ) -> list[LinkedDocument]:
        rows = self._db.all(_OF_ACCOUNT, {"account_id": account_id})
        found = [self._document(account_id, row) for row in rows]
        return [d for d in found if types is None or d.doc_type in types]

    def page_of(self, account_id: str, after: str | None, limit: int) -> list[LinkedEntry]:
        params: dict[str, object] = {"account_id": account_id, "limit": limit}
        if after is None:
            rows = self._db.all(_PAGE_FIRST, params)
        else:
            doc_type, _, index = after.partition(":")
            params |= {"doc_type": doc_type, "number_index": bytes.fromhex(index)}
            rows = self._db.all(_PAGE_AFTER, params)
        return [
            LinkedEntry(entry_key(row[0], bytes(row[1])), self._document(account_id, row))
            for row in rows
        ]

    def remove(self, account_id: str, doc_type: DocumentType, number: str) -> LinkedDocument | None:
        params = {
            "account_id": account_id,
            "doc_type": doc_type.value,
            "number_index": document_number_index(self._p, doc_type, number),
        }
        row = self._db.one(_ONE, params)
        if row is None or self._db.count(_DELETE, params) != 1:
            return None
        return self._document(account_id, row)

    def _document(self, account_id: str, row: Row) -> LinkedDocument:
        doc_type, index = row[0], bytes(row[1])
        record = json.loads(self._p.open(row[2], _context(account_id, doc_type, index)))
        stored = read_document(DocumentType(doc_type), record)
        return LinkedDocument(
            doc_type=stored.doc_type,
            number=stored.number,
            issuer=stored.issuer,
            valid_from=stored.valid_from,
            valid_until=stored.valid_until,
            linked_at=self._read_t(row[3]),
            linked_by=row[4],
        )
