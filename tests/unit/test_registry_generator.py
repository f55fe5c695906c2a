"""`eid-server registry generate`'s people: valid, consistent and distinct ID
numbers, NFC names, children under 14 with adult guardians in the registry,
about 1% foreigners with passports, an enrolled portrait each, fingerprints
from 14, documents for adults; the same seed gives the same registry."""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from datetime import date
from importlib import resources

import numpy as np
import pytest

from eid_service.domain.biometrics import FACE_DIMENSIONS, FINGERPRINT_DIMENSIONS, Finger
from eid_service.domain.citizen import age_on, parse_full_name
from eid_service.domain.personal_id import check_consistent, parse_personal_id
from eid_service.domain.registry_person import (
    NATIONALITY_PATTERN,
    PASSPORT_NUMBER_PATTERN,
    PersonKind,
    RegistryPerson,
)
from eid_service.registry_tools.generator import CHUNK_SIZE, generate, generate_chunk

AS_OF = date(2026, 11, 24)
COUNT = 12_000  # two chunks


@pytest.fixture(scope="module")
def people() -> list[RegistryPerson]:
    return generate(7, COUNT, AS_OF)


def _age(person: RegistryPerson) -> int:
    return age_on(person.demographics.birth_date, AS_OF)


def test_the_count_is_exact(people: list[RegistryPerson]) -> None:
    assert len(people) == COUNT
    assert len(generate(7, 1, AS_OF)) == 1


def test_id_numbers_are_valid_consistent_and_distinct(people: list[RegistryPerson]) -> None:
    ids = [p.demographics.personal_id for p in people]
    assert len(set(ids)) == len(ids)
    for person in people:
        d = person.demographics
        pid = parse_personal_id(d.personal_id)
        assert pid.value == d.personal_id
        check_consistent(pid, d.birth_date, d.gender)
        assert pid.is_foreigner == (person.kind is PersonKind.FOREIGNER)
    # The 6-digit serials look random, not like a counter.
    serials = Counter(i[6:] for i in ids if not i.startswith("900"))
    assert serials.most_common(1)[0][1] < 10


def test_no_number_of_the_demo_registry_is_reused() -> None:
    demo = resources.files("eid_service.data").joinpath("demo_citizens.csv").read_text("utf-8")
    demo_ids = {line.split(",", 1)[0] for line in demo.splitlines()[1:]}
    made = {p.demographics.personal_id for p in generate(0, 30_000, AS_OF)}
    assert not made & demo_ids


def test_names_are_nfc_vietnamese_with_diacritics(people: list[RegistryPerson]) -> None:
    names = [p.demographics.full_name for p in people]
    for name in names:
        assert unicodedata.is_normalized("NFC", name)
        assert parse_full_name(name) == name
    citizens = [p.demographics.full_name for p in people if p.kind is PersonKind.CITIZEN]
    assert sum(n.startswith("Nguyễn ") for n in citizens) / len(citizens) == pytest.approx(
        0.31, abs=0.05
    )
    assert sum(not n.isascii() for n in citizens) / len(citizens) > 0.9
    assert all(len(n.split()) >= 3 for n in citizens)


def test_children_under_14_have_adult_guardians_in_the_registry(
    people: list[RegistryPerson],
) -> None:
    by_id = {p.demographics.personal_id: p for p in people}
    seen: set[str] = set()
    children = 0
    for person in people:
        if _age(person) < 14:
            children += 1
            assert person.guardians, "a child under 14 without a guardian"
        for guardian_id in person.guardians:
            assert guardian_id in seen, "guardians come before their wards"
            guardian = by_id[guardian_id]
            assert _age(guardian) >= 18
            assert guardian.kind is PersonKind.CITIZEN
            assert guardian.demographics.birth_date < person.demographics.birth_date
        seen.add(person.demographics.personal_id)
    # Viet Nam: a little under a quarter of the population is under 14.
    assert 0.17 < children / len(people) < 0.30


def test_about_one_percent_are_foreigners_with_passports(people: list[RegistryPerson]) -> None:
    foreigners = [p for p in people if p.kind is PersonKind.FOREIGNER]
    assert 0.006 < len(foreigners) / len(people) < 0.014
    passports = set()
    for person in foreigners:
        passport = person.passport
        assert passport is not None
        assert PASSPORT_NUMBER_PATTERN.fullmatch(passport.number)
        assert NATIONALITY_PATTERN.fullmatch(passport.nationality)
        assert passport.nationality != "VNM"
        assert person.demographics.birth_date < passport.issue_date <= AS_OF
        assert passport.issue_place and unicodedata.is_normalized("NFC", passport.issue_place)
        passports.add((passport.nationality, passport.number))
    assert len(passports) == len(foreigners)
    assert all(p.passport is None for p in people if p.kind is PersonKind.CITIZEN)
    assert len({p.passport.nationality for p in foreigners if p.passport}) >= 5


def test_everyone_has_a_unit_portrait_and_adults_two_fingerprints(
    people: list[RegistryPerson],
) -> None:
    for person in people:
        assert person.portrait is not None
        face = np.frombuffer(person.portrait.packed, dtype="<f4")
        assert face.shape == (FACE_DIMENSIONS,)
        assert math.isclose(float(np.linalg.norm(face)), 1.0, rel_tol=1e-5)
        if _age(person) >= 14:
            assert set(person.fingerprints) == {Finger.RIGHT_INDEX, Finger.LEFT_INDEX}
            for template in person.fingerprints.values():
                assert template.dimensions == FINGERPRINT_DIMENSIONS
        elif _age(person) < 13:
            assert person.fingerprints == {}
    faces = {p.portrait.packed for p in people if p.portrait}
    assert len(faces) == len(people)


def test_adults_have_some_documents_children_none(people: list[RegistryPerson]) -> None:
    numbers: set[tuple[str, str]] = set()
    with_documents = 0
    for person in people:
        if _age(person) < 18:
            assert person.documents == ()
        with_documents += bool(person.documents)
        for doc in person.documents:
            assert re.fullmatch(r"[A-Z0-9]{4,20}", doc.number)
            assert doc.issuer and unicodedata.is_normalized("NFC", doc.issuer)
            assert doc.valid_from <= AS_OF
            assert doc.valid_until is None or doc.valid_until > doc.valid_from
            numbers.add((doc.doc_type.value, doc.number))
    assert len(numbers) == sum(len(p.documents) for p in people)
    adults = sum(_age(p) >= 18 for p in people)
    assert 0.3 < with_documents / adults < 0.8
    assert {t for t, _ in numbers} == {
        "driving_licence",
        "health_insurance",
        "social_insurance",
        "tax_code",
        "vehicle_registration",
    }


def test_the_same_seed_makes_the_same_registry_another_seed_another() -> None:
    first = generate_chunk(3, 1, CHUNK_SIZE + 500, AS_OF)
    assert generate_chunk(3, 1, CHUNK_SIZE + 500, AS_OF) == first
    other = generate_chunk(4, 1, CHUNK_SIZE + 500, AS_OF)
    shared = {p.demographics.personal_id for p in other} & {
        p.demographics.personal_id for p in first
    }
    assert len(shared) < len(first) // 100
    assert [p.demographics.full_name for p in other] != [p.demographics.full_name for p in first]


def test_counts_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="count"):
        generate_chunk(0, 0, 0, AS_OF)
    with pytest.raises(ValueError, match="chunk"):
        generate_chunk(0, 2, CHUNK_SIZE, AS_OF)
