"""The national population registry, as far as registration needs it: the
living people (a recorded death hides the record from `find` and `person`),
their enrolled biometric templates, children's guardians and documents.

Every personal value is sealed (AES-GCM) with a context naming the row's
blind index and the field, so a blob moved to another row fails to open;
ID numbers, passports and document numbers are found by keyed blind index.
"""

from __future__ import annotations

import base64
import json
from datetime import date

from eid_service.domain.biometrics import Finger, Template
from eid_service.domain.citizen import Demographics, Gender
from eid_service.domain.registry_person import (
    DocumentType,
    Passport,
    PersonKind,
    RegistryDocument,
    RegistryPerson,
)
from eid_service.store.repositories.base import Repository
from eid_service.store.sql import Row, Sql

PASSPORT_INDEX_PURPOSE = "passport"
DOCUMENT_INDEX_PURPOSE = "document-number"

_FIND = Sql(
    "SELECT personal_id_enc, full_name_enc, birth_date_enc, gender FROM registry_citizens"
    " WHERE personal_id_index = :index AND death_date_enc IS NULL"
)
_PERSON = Sql(
    "SELECT personal_id_index, personal_id_enc, full_name_enc, birth_date_enc, gender, kind,"
    " passport_enc, portrait_enc, fingerprints_enc FROM registry_citizens"
    " WHERE personal_id_index = :index AND death_date_enc IS NULL"
)
_PERSON_BY_PASSPORT = Sql(
    "SELECT personal_id_index, personal_id_enc, full_name_enc, birth_date_enc, gender, kind,"
    " passport_enc, portrait_enc, fingerprints_enc FROM registry_citizens"
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
_MARK_DECEASED = Sql(
    "UPDATE registry_citizens SET death_date_enc = :died_on"
    " WHERE personal_id_index = :index AND death_date_enc IS NULL"
)
_INSERT = Sql(
    "INSERT INTO registry_citizens"
    " (personal_id_index, personal_id_enc, full_name_enc, birth_date_enc, gender, kind, key_id,"
    " passport_index, passport_enc, portrait_enc, fingerprints_enc)"
    " VALUES (:index, :personal_id, :full_name, :birth_date, :gender, :kind, :key_id,"
    " :passport_index, :passport, :portrait, :fingerprints)"
    " ON CONFLICT DO NOTHING"
)
_INSERT_GUARDIAN = Sql(
    "INSERT INTO registry_guardians (child_index, guardian_index) VALUES (:child, :guardian)"
    " ON CONFLICT DO NOTHING"
)
_INSERT_DOCUMENT = Sql(
    "INSERT INTO registry_documents (doc_type, number_index, holder_index, record_enc, key_id)"
    " VALUES (:doc_type, :number_index, :holder, :record, :key_id)"
    " ON CONFLICT DO NOTHING"
)


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
            gender=Gender(row[3]),
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
            found.append(
                RegistryDocument(
                    doc_type=DocumentType(doc_type),
                    number=record["number"],
                    issuer=record["issuer"],
                    valid_from=date.fromisoformat(record["valid_from"]),
                    valid_until=(
                        None
                        if record["valid_until"] is None
                        else date.fromisoformat(record["valid_until"])
                    ),
                )
            )
        return found

    def put(self, citizen: Demographics) -> bool:
        return self.put_person(RegistryPerson(citizen))

    def put_person(self, person: RegistryPerson) -> bool:
        """Adds a person (with guardians and documents) unless present; True when added.
        Guardians must be in the registry already (parents before children)."""
        d = person.demographics
        index = self._p.hasher.blind_index(d.personal_id)
        passport = person.passport
        added = self._db.count(
            _INSERT,
            {
                "index": index,
                "personal_id": self._p.seal(d.personal_id, _context(index, "personal_id")),
                "full_name": self._p.seal(d.full_name, _context(index, "full_name")),
                "birth_date": self._p.seal(d.birth_date.isoformat(), _context(index, "birth_date")),
                "gender": d.gender.value,
                "kind": person.kind.value,
                "key_id": self._p.cipher.active_key_id,
                "passport_index": (
                    None
                    if passport is None
                    else self.passport_index(passport.nationality, passport.number)
                ),
                "passport": None if passport is None else self._seal_passport(index, passport),
                "portrait": (
                    None
                    if person.portrait is None
                    else self._p.seal_bytes(person.portrait.packed, _context(index, "portrait"))
                ),
                "fingerprints": (
                    self._seal_fingerprints(index, person.fingerprints)
                    if person.fingerprints
                    else None
                ),
            },
        )
        if added != 1:
            return False
        for guardian in person.guardians:
            self._db.count(
                _INSERT_GUARDIAN,
                {"child": index, "guardian": self._p.hasher.blind_index(guardian)},
            )
        for document in person.documents:
            self._put_document(index, document)
        return True

    def mark_deceased(self, personal_id: str, died_on: date) -> bool:
        index = self._p.hasher.blind_index(personal_id)
        sealed = self._p.seal(died_on.isoformat(), _context(index, "death_date"))
        return self._db.count(_MARK_DECEASED, {"index": index, "died_on": sealed}) == 1

    def passport_index(self, nationality: str, passport_number: str) -> bytes:
        return self._p.hasher.digest(PASSPORT_INDEX_PURPOSE, f"{nationality}:{passport_number}")

    def _put_document(self, holder_index: bytes, document: RegistryDocument) -> None:
        doc_type = document.doc_type.value
        number_index = self._p.hasher.digest(
            DOCUMENT_INDEX_PURPOSE, f"{doc_type}:{document.number}"
        )
        record = {
            "number": document.number,
            "issuer": document.issuer,
            "valid_from": document.valid_from.isoformat(),
            "valid_until": None
            if document.valid_until is None
            else document.valid_until.isoformat(),
        }
        self._db.count(
            _INSERT_DOCUMENT,
            {
                "doc_type": doc_type,
                "number_index": number_index,
                "holder": holder_index,
                "record": self._p.seal(
                    json.dumps(record, ensure_ascii=False),
                    _document_context(doc_type, number_index),
                ),
                "key_id": self._p.cipher.active_key_id,
            },
        )

    def _seal_passport(self, index: bytes, passport: Passport) -> bytes:
        record = {
            "number": passport.number,
            "nationality": passport.nationality,
            "issue_date": passport.issue_date.isoformat(),
            "issue_place": passport.issue_place,
        }
        return self._p.seal(json.dumps(record, ensure_ascii=False), _context(index, "passport"))

    def _seal_fingerprints(self, index: bytes, prints: dict[Finger, Template]) -> bytes:
        packed = {
            str(finger.value): base64.b64encode(t.packed).decode("ascii")
            for finger, t in sorted(prints.items(), key=lambda item: item[0].value)
        }
        return self._p.seal(json.dumps(packed), _context(index, "fingerprints"))

    def _person(self, row: Row) -> RegistryPerson:
        index: bytes = row[0]
        demographics = Demographics(
            personal_id=self._p.open(row[1], _context(index, "personal_id")),
            full_name=self._p.open(row[2], _context(index, "full_name")),
            birth_date=date.fromisoformat(self._p.open(row[3], _context(index, "birth_date"))),
            gender=Gender(row[4]),
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
            portrait = Template(self._p.open_bytes(row[7], _context(index, "portrait")))
        fingerprints: dict[Finger, Template] = {}
        if row[8] is not None:
            opened = json.loads(self._p.open(row[8], _context(index, "fingerprints")))
            fingerprints = {
                Finger(int(number)): Template(base64.b64decode(packed))
                for number, packed in opened.items()
            }
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
