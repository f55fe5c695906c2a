"""The national population registry, as far as registration needs it: the
living people (a recorded death hides the record from `find` and `person`),
their enrolled biometric templates, children's guardians and documents.

Every personal value is sealed (AES-GCM) with a context naming the row's
blind index and the field, so a blob moved to another row fails to open
(gender too since revision 0020: rows written before hold it in clear until
`rotate-keys` seals it);
ID numbers, passports and document numbers are found by keyed blind index.
Templates are sealed as raw float32 bytes (fingerprints: per finger, its
ISO position, its length in values and the values).

Bulk loads (`eid-server registry generate|import`) seal people with
`seal_people`, which needs no database (worker processes run it), and write
them with `PopulationRegistry.put_sealed`, a few executemany statements.
"""

from __future__ import annotations

import enum
import functools
import hmac
import json
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from eid_service.domain.biometrics import Finger, Template
from eid_service.domain.citizen import Demographics, Gender
from eid_service.domain.linked_document import LinkedDocument
from eid_service.domain.registry_person import (
    DocumentType,
    Passport,
    PersonKind,
    RegistryDocument,
    RegistryPerson,
)
from eid_service.security.keyed_hash import BLIND_INDEX_PURPOSE
from eid_service.store.protection import DataProtection
from eid_service.store.repositories.base import Repository
from eid_service.store.sql import Row, Rows, Sql

PASSPORT_INDEX_PURPOSE = "passport"
DOCUMENT_INDEX_PURPOSE = "document-number"

_FIND = Sql(
    "SELECT personal_id_enc, full_name_enc, birth_date_enc, gender_enc, gender"
    " FROM registry_citizens WHERE personal_id_index = :index AND death_date_enc IS NULL"
)
_PERSON = Sql(
    "SELECT personal_id_index, personal_id_enc, full_name_enc, birth_date_enc, gender_enc, kind,"
    " passport_enc, portrait_enc, fingerprints_enc, gender FROM registry_citizens"
    " WHERE personal_id_index = :index AND death_date_enc IS NULL"
)
_PERSON_BY_PASSPORT = Sql(
    "SELECT personal_id_index, personal_id_enc, full_name_enc, birth_date_enc, gender_enc, kind,"
    " passport_enc, portrait_enc, fingerprints_enc, gender FROM registry_citizens"
    " WHERE passport_index = :index AND death_date_enc IS NULL"
)
_GUARDIANS = Sql(
    "SELECT c.personal_id_enc, c.personal_id_index FROM registry_guardians g"
    " JOIN registry_citizens c ON c.personal_id_index = g.guardian_index"
    " WHERE g.child_index = :index"
)
_WARDS = Sql(
    "SELECT c.personal_id_enc, c.personal_id_index FROM registry_guardians g"
    " JOIN registry_citizens c ON c.personal_id_index = g.child_index"
    " WHERE g.guardian_index = :index AND c.death_date_enc IS NULL"
)
_DOCUMENTS = Sql(
    "SELECT doc_type, number_index, record_enc FROM registry_documents"
    " WHERE holder_index = :index ORDER BY doc_type, number_index"
)
_DOCUMENT = Sql(
    "SELECT holder_index, record_enc FROM registry_documents"
    " WHERE doc_type = :doc_type AND number_index = :number_index"
)
_PRESENT = Sql("SELECT 1 FROM registry_citizens WHERE personal_id_index = :index")
_MARK_DECEASED = Sql(
    "UPDATE registry_citizens SET death_date_enc = :died_on"
    " WHERE personal_id_index = :index AND death_date_enc IS NULL"
)
# Blind indexes looked up a statement (SQLite allows 999 parameters at least).
_PRESENT_CHUNK = 500
# Which of a list of indexes the registry holds (":i0, :i1, ..." appended).
_PRESENT_IN = "SELECT personal_id_index FROM registry_citizens WHERE personal_id_index IN "
# Bulk loads on PostgreSQL take turns (a transaction-scoped advisory lock):
# each checks passports, documents and guardians against what the registry
# holds, and two at once would each pass the check before the other commits.
# SQLite's single writer makes them take turns already. Register only reads.
REGISTRY_LOAD_LOCK = 0x6569_6452_6567  # "eidReg"
_TAKE_LOAD_LOCK = Sql("SELECT pg_advisory_xact_lock(:key)")
_PASSPORTS_IN = "SELECT passport_index FROM registry_citizens WHERE passport_index IN "
_DOCUMENTS_IN = (
    "SELECT number_index FROM registry_documents WHERE doc_type = :doc_type AND number_index IN "
)


@functools.cache
def _in_list(query: str, n: int) -> Sql:
    names = ", ".join(f":i{i}" for i in range(n))  # parameters only, no values
    return Sql(query + f"({names})")


# KiB of page cache on a connection that loads in bulk, and SQLite's default.
_BULK_CACHE = Sql("PRAGMA cache_size = -524288")
_DEFAULT_CACHE = Sql("PRAGMA cache_size = -2000")
# Positional, for executemany over the tuples `seal_people` makes.
_INSERT = Rows(
    "INSERT INTO registry_citizens"
    " (personal_id_index, personal_id_enc, full_name_enc, birth_date_enc, gender_enc, kind, key_id,"
    " passport_index, passport_enc, portrait_enc, fingerprints_enc)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT DO NOTHING"
)
_INSERT_GUARDIAN = Rows(
    "INSERT INTO registry_guardians (child_index, guardian_index) VALUES (?, ?)"
    " ON CONFLICT DO NOTHING"
)
_INSERT_DOCUMENT = Rows(
    "INSERT INTO registry_documents (doc_type, number_index, holder_index, record_enc, key_id)"
    " VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT DO NOTHING"
)
# What `seal_people` seals of a gender.
_GENDER_BYTES = {gender: gender.value.encode() for gender in Gender}
# A fingerprint in its sealed form: ISO finger position, length in values.
_FINGER_HEADER = struct.Struct("<BH")


def _context(index: bytes, name: str) -> str:
    return f"registry:{index.hex()}:{name}"


def _document_context(doc_type: str, number_index: bytes) -> str:
    return f"registry-document:{doc_type}:{number_index.hex()}"


class PopulationRegistry(Repository):
    def find(self, personal_id: str) -> Demographics | None:
        index = self._p.hasher.blind_index(personal_id)
        row = self._db.one(_FIND, {"index": index})
        if row is None:
            return None
        return Demographics(
            personal_id=self._p.open(row[0], _context(index, "personal_id")),
            full_name=self._p.open(row[1], _context(index, "full_name")),
            birth_date=date.fromisoformat(self._p.open(row[2], _context(index, "birth_date"))),
            gender=self._gender(index, row[3], row[4]),
        )

    def person(self, personal_id: str) -> RegistryPerson | None:
        row = self._db.one(_PERSON, {"index": self._p.hasher.blind_index(personal_id)})
        return None if row is None else self._person(row)

    def person_by_passport(self, nationality: str, passport_number: str) -> RegistryPerson | None:
        index = self.passport_index(nationality, passport_number)
        row = self._db.one(_PERSON_BY_PASSPORT, {"index": index})
        return None if row is None else self._person(row)

    def wards(self, guardian_id: str) -> list[str]:
        """ID numbers of the living children the registry records under this guardian."""
        index = self._p.hasher.blind_index(guardian_id)
        rows = self._db.all(_WARDS, {"index": index})
        return sorted(self._p.open(r[0], _context(r[1], "personal_id")) for r in rows)

    def documents(self, personal_id: str) -> list[RegistryDocument]:
        """The documents issued to a person, by type and number."""
        index = self._p.hasher.blind_index(personal_id)
        found = []
        for doc_type, number_index, sealed in self._db.all(_DOCUMENTS, {"index": index}):
            record = json.loads(self._p.open(sealed, _document_context(doc_type, number_index)))
            found.append(read_document(DocumentType(doc_type), record))
        return found

    def document(
        self, holder_id: str, doc_type: DocumentType, number: str
    ) -> RegistryDocument | None:
        """The document if it was issued to this person; None whether it does
        not exist or another person holds it (nothing is opened then)."""
        number_index = document_number_index(self._p, doc_type, number)
        row = self._db.one(_DOCUMENT, {"doc_type": doc_type.value, "number_index": number_index})
        holder = self._p.hasher.blind_index(holder_id)
        if row is None or not hmac.compare_digest(bytes(row[0]), holder):
            return None
        sealed = row[1]
        return read_document(
            doc_type,
            json.loads(self._p.open(sealed, _document_context(doc_type.value, number_index))),
        )

    def put(self, citizen: Demographics) -> bool:
        return self.put_person(RegistryPerson(citizen))

    def put_person(self, person: RegistryPerson) -> bool:
        """Adds a person (with guardians and documents) unless present; True when added.
        Guardians must be in the registry already (parents before children)."""
        sealed = seal_people(self._p, [person])
        if self._db.many(_INSERT, sealed.citizens) != 1:
            return False
        self._db.many(_INSERT_GUARDIAN, sealed.guardians)
        self._db.many(_INSERT_DOCUMENT, sealed.documents)
        return True

    def put_sealed(self, sealed: SealedPeople) -> Written:
        """Adds the people of a sealed batch that are not present yet, with
        their guardians and documents (those present already are left as they
        are). The bulk path of `put_person`. A batch holds each person, each
        passport and each document once.

        A new person is refused whole (nothing of them written) when another
        person holds their passport or one of their documents, or when one
        of their guardians is neither in the registry nor written with them:
        the registry never holds a child whose guardian it lacks, and a
        person loaded without a document could not get it from a corrected
        file (a person present is not updated)."""
        if self._db.postgres:
            self._db.one(_TAKE_LOAD_LOCK, {"key": REGISTRY_LOAD_LOCK})
        # A person present already keeps the guardians and documents recorded
        # for them: a file's row for them must not add a guardian (who could
        # then register the child) or a document.
        present = self._present_of({row[0] for row in sealed.citizens})
        new = [row for row in sealed.citizens if row[0] not in present]
        new_indexes = {row[0] for row in new}
        links = [g for g in sealed.guardians if g[0] in new_indexes]
        documents = [d for d in sealed.documents if d[2] in new_indexes]
        refused: dict[bytes, Refused] = {}
        passports = self._held(_PASSPORTS_IN, {row[7] for row in new if row[7] is not None})
        for row in new:
            if row[7] in passports:
                refused[row[0]] = Refused(Refusal.PASSPORT_HELD)
        for doc_type in {d[0] for d in documents}:
            numbers = {d[1] for d in documents if d[0] == doc_type}
            held = self._held(_DOCUMENTS_IN, numbers, {"doc_type": doc_type})
            for d in documents:
                if d[0] == doc_type and d[1] in held:
                    refused.setdefault(d[2], Refused(Refusal.DOCUMENT_HELD))
        # Guardians: present already, or new and not refused; refusing a
        # person refuses their wards in turn (a worklist: a long chain in a
        # hostile file costs a step a link, not a pass over the batch).
        found = self._present_of({g[1] for g in links} - new_indexes)
        wards: dict[bytes, list[bytes]] = {}
        for child, guardian in links:
            wards.setdefault(guardian, []).append(child)
            if guardian not in found and guardian not in new_indexes:
                refused.setdefault(child, Refused(Refusal.GUARDIAN_MISSING, guardian))
        unwritten = list(refused)
        while unwritten:
            guardian = unwritten.pop()
            for child in wards.get(guardian, ()):
                if child not in refused:
                    refused[child] = Refused(Refusal.GUARDIAN_MISSING, guardian)
                    unwritten.append(child)
        added = self._db.many(_INSERT, [row for row in new if row[0] not in refused])
        self._db.many(_INSERT_GUARDIAN, [g for g in links if g[0] not in refused])
        self._db.many(_INSERT_DOCUMENT, [d for d in documents if d[2] not in refused])
        return Written(added, refused)

    def _present_of(self, indexes: set[bytes]) -> set[bytes]:
        """Those of these blind indexes the registry holds a person of."""
        return self._held(_PRESENT_IN, indexes)

    def _held(
        self, query: str, indexes: set[bytes], params: dict[str, Any] | None = None
    ) -> set[bytes]:
        """Those of `indexes` that `query` (a SELECT of one index column
        ending in IN) finds."""
        ordered = sorted(indexes)
        found: set[bytes] = set()
        for at in range(0, len(ordered), _PRESENT_CHUNK):
            part = ordered[at : at + _PRESENT_CHUNK]
            values = {**(params or {}), **{f"i{n}": index for n, index in enumerate(part)}}
            found.update(bytes(row[0]) for row in self._db.all(_in_list(query, len(part)), values))
        return found

    def bulk_load_mode(self, on: bool) -> None:
        """SQLite: while on, this connection's page cache holds a whole batch's
        index pages (the blind indexes are random, so a batch touches every
        page of them, and a small cache writes each out again and again); the
        default again when off. PostgreSQL: nothing to do."""
        if not self._db.postgres:
            self._db.count(_BULK_CACHE if on else _DEFAULT_CACHE, {})

    def present(self, index: bytes) -> bool:
        """Whether the registry holds a person (living or not) of this blind index."""
        return self._db.one(_PRESENT, {"index": index}) is not None

    def mark_deceased(self, personal_id: str, died_on: date) -> bool:
        index = self._p.hasher.blind_index(personal_id)
        sealed = self._p.seal(died_on.isoformat(), _context(index, "death_date"))
        return self._db.count(_MARK_DECEASED, {"index": index, "died_on": sealed}) == 1

    def passport_index(self, nationality: str, passport_number: str) -> bytes:
        return passport_index(self._p, nationality, passport_number)

    def _gender(self, index: bytes, sealed: bytes | None, clear: str | None) -> Gender:
        """Sealed in `gender_enc`, or in clear in `gender` in a row written
        before revision 0020 that `rotate-keys` has not sealed yet."""
        if sealed is not None:
            return Gender(self._p.open(sealed, _context(index, "gender")))
        return Gender(clear)

    def _person(self, row: Row) -> RegistryPerson:
        index: bytes = row[0]
        demographics = Demographics(
            personal_id=self._p.open(row[1], _context(index, "personal_id")),
            full_name=self._p.open(row[2], _context(index, "full_name")),
            birth_date=date.fromisoformat(self._p.open(row[3], _context(index, "birth_date"))),
            gender=self._gender(index, row[4], row[9]),
        )
        passport = None
        if row[6] is not None:
            record = json.loads(self._p.open(row[6], _context(index, "passport")))
            passport = Passport(
                number=record["number"],
                nationality=record["nationality"],
                issue_date=date.fromisoformat(record["issue_date"]),
                issue_place=record["issue_place"],
            )
        portrait = None
        if row[7] is not None:
            portrait = Template(self._p.open_raw(row[7], _context(index, "portrait")))
        fingerprints: dict[Finger, Template] = {}
        if row[8] is not None:
            fingerprints = _unpack_fingerprints(
                self._p.open_raw(row[8], _context(index, "fingerprints"))
            )
        guardians = tuple(
            sorted(
                self._p.open(r[0], _context(r[1], "personal_id"))
                for r in self._db.all(_GUARDIANS, {"index": index})
            )
        )
        return RegistryPerson(
            demographics=demographics,
            kind=PersonKind(row[5]),
            passport=passport,
            portrait=portrait,
            fingerprints=fingerprints,
            guardians=guardians,
        )


class Refusal(enum.Enum):
    """Why `put_sealed` wrote nothing of a new person."""

    PASSPORT_HELD = "passport_held"  # by another person
    DOCUMENT_HELD = "document_held"  # a document of theirs, by another person
    GUARDIAN_MISSING = "guardian_missing"  # neither in the registry nor written now


@dataclass(frozen=True)
class Refused:
    why: Refusal
    guardian: bytes | None = None  # GUARDIAN_MISSING: the blind index of the one missing


@dataclass
class Written:
    """What `put_sealed` did: how many people it added, and the new people
    it refused, by blind index."""

    added: int = 0
    refused: dict[bytes, Refused] = field(default_factory=dict)


@dataclass
class SealedPeople:
    """People sealed for `PopulationRegistry.put_sealed`: the rows of the
    registry's three tables, nothing in clear. Picklable, so worker processes
    make them and the one that writes only writes."""

    citizens: list[tuple[Any, ...]] = field(default_factory=list)
    guardians: list[tuple[bytes, bytes]] = field(default_factory=list)
    documents: list[tuple[Any, ...]] = field(default_factory=list)

    def extend(self, other: SealedPeople) -> None:
        self.citizens.extend(other.citizens)
        self.guardians.extend(other.guardians)
        self.documents.extend(other.documents)

    def sort(self) -> None:
        """Rows in key order: a batch written in order touches each index page
        once (sorting a concatenation of sorted batches costs little)."""
        self.citizens.sort(key=_first)
        self.guardians.sort()
        self.documents.sort(key=_document_key)

    def __len__(self) -> int:
        return len(self.citizens)


def _first(row: tuple[Any, ...]) -> Any:
    return row[0]


def _document_key(row: tuple[Any, ...]) -> tuple[Any, Any]:
    return row[0], row[1]


def document_record(document: RegistryDocument | LinkedDocument) -> dict[str, Any]:
    """A document's sealed fields, as the JSON stored for the registry and for links."""
    until = document.valid_until
    return {
        "number": document.number,
        "issuer": document.issuer,
        "valid_from": document.valid_from.isoformat(),
        "valid_until": None if until is None else until.isoformat(),
    }


def read_document(doc_type: DocumentType, record: dict[str, Any]) -> RegistryDocument:
    """The document a stored record (document_record) holds."""
    until = record["valid_until"]
    return RegistryDocument(
        doc_type=doc_type,
        number=record["number"],
        issuer=record["issuer"],
        valid_from=date.fromisoformat(record["valid_from"]),
        valid_until=None if until is None else date.fromisoformat(until),
    )


def document_number_index(p: DataProtection, doc_type: DocumentType, number: str) -> bytes:
    """The keyed index a document is found by (its type and number), as
    `seal_people` computes it."""
    return p.hasher.digest(DOCUMENT_INDEX_PURPOSE, f"{doc_type.value}:{number}")


def passport_index(p: DataProtection, nationality: str, passport_number: str) -> bytes:
    """The blind index a foreigner is found by (nationality and passport number)."""
    return p.hasher.digest(PASSPORT_INDEX_PURPOSE, f"{nationality}:{passport_number}")


def seal_people(p: DataProtection, people: Iterable[RegistryPerson]) -> SealedPeople:
    """The rows that record these people (no database needed: bulk loads seal
    in worker processes). Guardians are rows of their own; that they are in
    the registry is the caller's to check. The contexts are `_context`'s and
    `_document_context`'s, spelt as bytes."""
    sealed = SealedPeople()
    citizens, guardians, documents = sealed.citizens, sealed.guardians, sealed.documents
    key_id = p.cipher.active_key_id
    seal = p.cipher.sealer()
    index_of = p.hasher.digester(BLIND_INDEX_PURPOSE)
    passport_of = p.hasher.digester(PASSPORT_INDEX_PURPOSE)
    number_of = p.hasher.digester(DOCUMENT_INDEX_PURPOSE)
    encode_json = json.JSONEncoder(ensure_ascii=False).encode
    for person in people:
        d = person.demographics
        index = index_of(d.personal_id.encode())
        prefix = b"registry:" + index.hex().encode() + b":"
        passport = person.passport
        passport_index = passport_sealed = None
        if passport is not None:
            passport_index = passport_of(f"{passport.nationality}:{passport.number}".encode())
            record: dict[str, str | None] = {
                "number": passport.number,
                "nationality": passport.nationality,
                "issue_date": passport.issue_date.isoformat(),
                "issue_place": passport.issue_place,
            }
            passport_sealed = seal(encode_json(record).encode(), prefix + b"passport")
        citizens.append(
            (
                index,
                seal(d.personal_id.encode(), prefix + b"personal_id"),
                seal(d.full_name.encode(), prefix + b"full_name"),
                seal(d.birth_date.isoformat().encode(), prefix + b"birth_date"),
                seal(_GENDER_BYTES[d.gender], prefix + b"gender"),
                person.kind.value,
                key_id,
                passport_index,
                passport_sealed,
                None
                if person.portrait is None
                else seal(person.portrait.packed, prefix + b"portrait"),
                seal(_pack_fingerprints(person.fingerprints), prefix + b"fingerprints")
                if person.fingerprints
                else None,
            )
        )
        for guardian in person.guardians:
            guardians.append((index, index_of(guardian.encode())))
        for document in person.documents:
            doc_type = document.doc_type.value
            number_index = number_of(f"{doc_type}:{document.number}".encode())
            record = document_record(document)
            context = f"registry-document:{doc_type}:{number_index.hex()}".encode()
            documents.append(
                (doc_type, number_index, index, seal(encode_json(record).encode(), context), key_id)
            )
    return sealed


def _pack_fingerprints(prints: dict[Finger, Template]) -> bytes:
    return b"".join(
        _FINGER_HEADER.pack(finger.value, template.dimensions) + template.packed
        for finger, template in sorted(prints.items(), key=lambda item: item[0].value)
    )


def _unpack_fingerprints(raw: bytes) -> dict[Finger, Template]:
    prints: dict[Finger, Template] = {}
    at = 0
    while at < len(raw):
        position, dimensions = _FINGER_HEADER.unpack_from(raw, at)
        at += _FINGER_HEADER.size
        prints[Finger(position)] = Template(raw[at : at + 4 * dimensions])
        at += 4 * dimensions
    return prints
