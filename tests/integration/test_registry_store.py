"""The population registry on each backend: people with passports, enrolled
templates, guardians and documents come back as they went in, found by ID
number or passport, and nothing personal is stored in clear."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import text

from eid_service.domain.biometrics import Finger, template_of
from eid_service.domain.citizen import Demographics, Gender
from eid_service.domain.personal_id import make_foreigner_id, make_personal_id
from eid_service.domain.registry_person import (
    DocumentType,
    Passport,
    PersonKind,
    RegistryDocument,
    RegistryPerson,
)
from eid_service.security.field_cipher import FieldCipher
from eid_service.security.keyed_hash import KeyedHasher
from eid_service.security.keys import generate_key_ring
from eid_service.store.database import create_engine
from eid_service.store.protection import DataProtection
from eid_service.store.uow import SqlUnitOfWork
from eid_service.use_cases.ports import Repositories

MOTHER_BORN = date(1988, 4, 9)
MOTHER = Demographics(
    make_personal_id("001", MOTHER_BORN, Gender.FEMALE, 321).value,
    "Lê Thị Hồng",
    MOTHER_BORN,
    Gender.FEMALE,
)
CHILD_BORN = date(2017, 8, 30)
CHILD = Demographics(
    make_personal_id("001", CHILD_BORN, Gender.MALE, 322).value,
    "Phạm Gia Bảo",
    CHILD_BORN,
    Gender.MALE,
)
VISITOR_BORN = date(1979, 1, 2)
VISITOR = Demographics(make_foreigner_id(17).value, "Kim Min-jun", VISITOR_BORN, Gender.MALE)
PASSPORT = Passport("M12345678", "KOR", date(2021, 6, 1), "Seoul")
FACE = template_of([((i * 37) % 11) - 5.0 for i in range(128)])
THUMB = template_of([float((i % 7) + 1) for i in range(64)])
LICENCE = RegistryDocument(
    DocumentType.DRIVING_LICENCE, "790123456789", "Sở GTVT Hà Nội", date(2020, 1, 1), None
)


def _uow(url: str) -> SqlUnitOfWork:
    ring = generate_key_ring()
    return SqlUnitOfWork(url, DataProtection(FieldCipher(ring), KeyedHasher(ring.hmac_key)))


@pytest.mark.asyncio
async def test_people_round_trip_and_are_found_by_id_or_passport(database_url: str) -> None:
    uow = _uow(database_url)
    try:
        mother = RegistryPerson(MOTHER, portrait=FACE, fingerprints={Finger.RIGHT_THUMB: THUMB})
        child = RegistryPerson(CHILD, guardians=(MOTHER.personal_id,), documents=(LICENCE,))
        visitor = RegistryPerson(VISITOR, kind=PersonKind.FOREIGNER, passport=PASSPORT)

        def load(r: Repositories) -> list[bool]:
            reg = r.registry
            added = [reg.put_person(p) for p in (mother, child, visitor)]
            return [*added, reg.put_person(child)]

        assert await uow.atomically(load) == [True, True, True, False]

        def read(r: Repositories) -> tuple[object, ...]:
            reg = r.registry
            return (
                reg.person(MOTHER.personal_id),
                reg.person(CHILD.personal_id),
                reg.person_by_passport("KOR", "M12345678"),
                reg.person_by_passport("JPN", "M12345678"),
                reg.wards(MOTHER.personal_id),
                reg.documents(CHILD.personal_id),
                reg.find(VISITOR.personal_id),
            )

        got_mother, got_child, by_passport, wrong_nation, wards, docs, found = await uow.read(read)
        assert got_mother == mother
        assert got_child == RegistryPerson(CHILD, guardians=(MOTHER.personal_id,))
        assert by_passport == visitor
        assert wrong_nation is None
        assert wards == [CHILD.personal_id]
        assert docs == [LICENCE]
        assert found == VISITOR
    finally:
        uow.close()


@pytest.mark.asyncio
async def test_nothing_personal_is_stored_in_clear(database_url: str, tmp_path: Path) -> None:
    uow = _uow(database_url)
    try:
        person = RegistryPerson(
            VISITOR, kind=PersonKind.FOREIGNER, passport=PASSPORT, documents=(LICENCE,)
        )
        await uow.atomically(lambda r: r.registry.put_person(person))
    finally:
        uow.close()
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            dump = b""
            for table in ("registry_citizens", "registry_documents", "registry_guardians"):
                for row in connection.execute(text(f"SELECT * FROM {table}")):  # noqa: S608
                    dump += repr(tuple(row)).encode()
    finally:
        engine.dispose()
    for secret in (VISITOR.personal_id, "Kim Min-jun", "M12345678", "790123456789", "Seoul"):
        assert secret.encode() not in dump
