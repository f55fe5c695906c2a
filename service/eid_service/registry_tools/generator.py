"""A synthetic national population registry, household by household.

People come in households: parents with children (a few under a single parent,
a few children under a grandparent as guardian), elderly people, adults alone
or in couples, and about 1% foreign residents with passports. Every child
under 18 has its parents or guardian recorded, so every child under 14 does.
Everyone gets an enrolled portrait (a unit-length random face feature vector);
people of 14 and over (the age the chip ID card with fingerprints is issued)
two index-finger templates; adults some documents: health and social
insurance, tax code, driving licence, vehicle registration.

Output is a function of (seed, count, as-of date) alone: the registry is made
in chunks of CHUNK_SIZE people, each from its own seeded generators, so worker
processes can make chunks in any order and the result is the same. ID
numbers are valid (province of birth, century and gender digit, year, serial)
and distinct: a chunk owns BUCKET_SLOTS serials of every (province, century
and gender, year) bucket, scattered over the 6-digit range by a permutation.
Serials from 900000 up are left to the demo registry's synthetic citizens,
and the shipped demo citizens' numbers are skipped, so a generated registry
loads beside `eid-server load-demo`.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from importlib import resources
from typing import TypeVar

import numpy as np

from eid_service.domain.biometrics import FACE_DIMENSIONS, FINGERPRINT_DIMENSIONS, Finger, Template
from eid_service.domain.citizen import Demographics, Gender
from eid_service.domain.personal_id import make_foreigner_id, make_personal_id, province_codes
from eid_service.domain.registry_person import (
    DocumentType,
    Passport,
    PersonKind,
    RegistryDocument,
    RegistryPerson,
)
from eid_service.registry_tools.names import (
    FAMILY_NAMES,
    GIVEN_NAMES,
    MIDDLE_NAMES,
    NATIONALITIES,
    PLATE_PREFIXES,
    PROVINCE_DEFAULT_WEIGHT,
    PROVINCE_WEIGHTS,
    TRADITIONAL_MIDDLE,
    Nationality,
)

CHUNK_SIZE = 10_000
# Serials of one (province, century-gender digit, year) bucket a chunk may use;
# a bucket holds about 1 in 10,000 people, so 50 is never reached in practice.
BUCKET_SLOTS = 50
_SERIALS = 900_000  # 900000-999999: the demo registry's synthetic citizens
MAX_COUNT = _SERIALS // BUCKET_SLOTS * CHUNK_SIZE
FINGERS = (Finger.RIGHT_INDEX, Finger.LEFT_INDEX)
FINGERPRINT_AGE = 14
ADULT_AGE = 18
_YEAR = 365.2425
# The days ages may be counted on: the oldest people made are 93, and ID
# numbers encode birth years 1900 to 2399 only.
EARLIEST_AS_OF = date(1994, 1, 1)
LATEST_AS_OF = date(2399, 12, 31)
T = TypeVar("T")

# Household kinds and their chances (per household, not per person).
_FOREIGNER = 0.022
_FAMILY = 0.34
_GRANDPARENT = 0.02
_ELDERLY = 0.16
# Children per family: 1, 2, 3 or 4.
_CHILDREN = (0.45, 0.87, 0.97, 1.0)
# Per adult: the documents the registries of other agencies issued, with
# their chance (driving licences and vehicles for the ages that drive).
_DOCUMENT_CHANCES = (
    (DocumentType.HEALTH_INSURANCE, 0.35),
    (DocumentType.TAX_CODE, 0.20),
    (DocumentType.DRIVING_LICENCE, 0.15),
    (DocumentType.SOCIAL_INSURANCE, 0.10),
    (DocumentType.VEHICLE_REGISTRATION, 0.05),
)
_HEALTH_PREFIXES = ("DN", "GD", "HS", "HT", "CN", "HN", "CH", "NO")


def _affine(multiplier: int, modulus: int, offset: int) -> tuple[int, int, int]:
    return multiplier, offset % modulus, modulus


def _permute(x: int, p: tuple[int, int, int]) -> int:
    """x scattered over [0, modulus): a bijection for x below the modulus."""
    return (x * p[0] + p[1]) % p[2]


@dataclass(frozen=True)
class _Protoperson:
    gender: Gender
    born: date
    family_name: str
    province: str
    guardians: tuple[int, ...] = ()  # positions in the chunk
    nationality: Nationality | None = None


class _Chunk:
    """Makes one chunk: `people()`."""

    def __init__(self, seed: int, chunk: int, size: int, as_of: date) -> None:
        self.seed, self.chunk, self.size, self.as_of = seed, chunk, size, as_of
        self.first = chunk * CHUNK_SIZE  # global position of the chunk's first person
        self.rng = random.Random(f"eid-registry:{seed}:{chunk}")  # noqa: S311 (synthetic data)
        self.vectors = np.random.default_rng([seed, chunk])
        self.today = as_of.toordinal()
        self.serial = _affine(370_373, _SERIALS, seed * 104_729)
        self.foreign_serial = _affine(123_457, 10**9, seed * 7_919)
        self.number = _affine(654_323, 10**10, seed * 15_485_863)
        self.used: dict[tuple[str, int, int], int] = {}

    # -- households ------------------------------------------------------
    def protopeople(self) -> list[_Protoperson]:
        made: list[_Protoperson] = []
        rng = self.rng
        while len(made) < self.size:
            room = self.size - len(made)
            kind = rng.random()
            if kind < _FOREIGNER:
                made.append(self._foreigner())
            elif kind < _FOREIGNER + _FAMILY:
                self._family(made, room)
            elif kind < _FOREIGNER + _FAMILY + _GRANDPARENT and room >= 2:
                self._grandparent(made, room)
            elif kind < _FOREIGNER + _FAMILY + _GRANDPARENT + _ELDERLY:
                self._adults(made, room, 60, 92)
            else:
                self._adults(made, room, 18, 59)
        return made

    def _born(self, youngest: float, oldest: float) -> date:
        days = self.rng.uniform(youngest * _YEAR, oldest * _YEAR)
        return date.fromordinal(self.today - int(days))

    def _person(
        self, gender: Gender, born: date, family: str, guardians: tuple[int, ...] = ()
    ) -> _Protoperson:
        return _Protoperson(gender, born, family, self._province(), guardians)

    def _family(self, made: list[_Protoperson], room: int) -> None:
        rng = self.rng
        single_mother = rng.random() < 0.08
        single_father = not single_mother and rng.random() < 0.03
        mother_born = self._born(20, 55)
        father_name = self._family_name()
        parents: list[int] = []
        if not single_father:
            made.append(self._person(Gender.FEMALE, mother_born, self._family_name()))
            parents.append(len(made) - 1)
        if not single_mother and len(parents) < room:
            older_by = int(rng.gauss(3, 3) * _YEAR)
            father_born = min(self.today - int(20 * _YEAR), mother_born.toordinal() - older_by)
            made.append(self._person(Gender.MALE, date.fromordinal(father_born), father_name))
            parents.append(len(made) - 1)
        child_name = made[parents[0]].family_name if single_mother else father_name
        # Born once the younger parent was 18, and under 18 today.
        youngest_parent = max(made[i].born.toordinal() for i in parents)
        earliest = max(youngest_parent + int(18 * _YEAR), self.today - int(18 * _YEAR) + 1)
        children = 1 + bisect.bisect(_CHILDREN, rng.random())
        for _ in range(min(children, self.size - len(made))):
            if earliest > self.today:
                break
            born = date.fromordinal(rng.randint(earliest, self.today))
            gender = Gender.MALE if rng.random() < 0.51 else Gender.FEMALE
            made.append(self._person(gender, born, child_name, tuple(parents)))

    def _grandparent(self, made: list[_Protoperson], room: int) -> None:
        rng = self.rng
        gender = Gender.FEMALE if rng.random() < 0.7 else Gender.MALE
        family = self._family_name()
        made.append(self._person(gender, self._born(55, 80), family))
        guardian = len(made) - 1
        for _ in range(min(1 + int(rng.random() < 0.4), room - 1)):
            kid = Gender.MALE if rng.random() < 0.51 else Gender.FEMALE
            made.append(self._person(kid, self._born(0, 13.9), self._family_name(), (guardian,)))

    def _adults(self, made: list[_Protoperson], room: int, youngest: int, oldest: int) -> None:
        rng = self.rng
        couple = room >= 2 and rng.random() < 0.45
        first = Gender.MALE if rng.random() < 0.5 else Gender.FEMALE
        # Fewer of each older year (a population pyramid's top).
        age = self.rng.triangular(youngest, oldest, youngest)
        born = self._born(age, age + 1)
        made.append(self._person(first, born, self._family_name()))
        if couple:
            other = Gender.FEMALE if first is Gender.MALE else Gender.MALE
            offset = int(rng.gauss(0, 3) * _YEAR)
            partner = date.fromordinal(
                min(self.today - int(youngest * _YEAR), born.toordinal() + offset)
            )
            made.append(self._person(other, partner, self._family_name()))

    def _foreigner(self) -> _Protoperson:
        rng = self.rng
        nationality = _pick(rng, NATIONALITIES, _NATIONALITY_CUMULATIVE)
        gender = Gender.MALE if rng.random() < 0.6 else Gender.FEMALE
        return _Protoperson(gender, self._born(20, 70), "", "", nationality=nationality)

    # -- names and places ------------------------------------------------
    def _family_name(self) -> str:
        return _pick(self.rng, _FAMILY_LIST, _FAMILY_CUMULATIVE)

    def _province(self) -> str:
        return _pick(self.rng, _PROVINCE_LIST, _PROVINCE_CUMULATIVE)

    def _vietnamese_name(self, p: _Protoperson) -> str:
        rng = self.rng
        traditional = 0.7 if p.born.year < 1980 else 0.25
        if rng.random() < traditional:
            middle = TRADITIONAL_MIDDLE[p.gender]
        else:
            middle = rng.choice(MIDDLE_NAMES[p.gender])
        given = rng.choice(GIVEN_NAMES[p.gender])
        while given == middle:
            given = rng.choice(GIVEN_NAMES[p.gender])
        if rng.random() < 0.12:
            second = rng.choice(MIDDLE_NAMES[p.gender])
            if second not in (middle, given):
                middle = f"{middle} {second}"
        return f"{p.family_name} {middle} {given}"

    @staticmethod
    def _foreign_name(rng: random.Random, n: Nationality, gender: Gender) -> str:
        family = rng.choice(n.family)
        given = rng.choice(n.given_male if gender is Gender.MALE else n.given_female)
        return f"{family} {given}" if n.family_first else f"{given} {family}"

    # -- numbers ---------------------------------------------------------
    def _citizen_id(self, p: _Protoperson) -> str:
        century, year = divmod(p.born.year - 1900, 100)
        bucket = (p.province, century * 2 + (p.gender is Gender.FEMALE), year)
        while True:
            slot = self.used.get(bucket, 0)
            if slot >= BUCKET_SLOTS:
                raise RuntimeError("a serial bucket overflowed")  # never at these rates
            self.used[bucket] = slot + 1
            # One permutation per bucket: first slots of two buckets differ too.
            shift = int(p.province) * 7_919 + bucket[1] * 104_729 + year * 1_299_709
            serial = (_permute(self.chunk * BUCKET_SLOTS + slot, self.serial) + shift) % _SERIALS
            pid = make_personal_id(p.province, p.born, p.gender, serial).value
            if pid not in _DEMO_IDS:
                return pid

    def _passport(self, n: Nationality, position: int, born: date) -> Passport:
        rng = self.rng
        slots = n.passport_layout.count("#")
        digits = iter(f"{_permute(position, (7_654_321, 0, 10**slots)):0{slots}d}")
        number = "".join(
            next(digits) if c == "#" else chr(rng.randint(65, 90)) if c == "@" else c
            for c in n.passport_layout
        )
        issued_earliest = max(born.toordinal() + int(18 * _YEAR), self.today - 3650)
        issued = date.fromordinal(rng.randint(issued_earliest, self.today - 1))
        return Passport(
            number=number,
            nationality=n.code,
            issue_date=issued,
            issue_place=rng.choice(n.issue_places),
        )

    def _documents(self, p: _Protoperson, position: int) -> tuple[RegistryDocument, ...]:
        rng = self.rng
        age = (self.today - p.born.toordinal()) / _YEAR
        if age < ADULT_AGE:
            return ()
        province = province_codes()[p.province]
        number = _permute(position, self.number)
        of_age = p.born.toordinal() + int(ADULT_AGE * _YEAR)
        docs: list[RegistryDocument] = []
        for doc_type, chance in _DOCUMENT_CHANCES:
            if rng.random() >= chance:
                continue
            since = date.fromordinal(rng.randint(max(of_age, self.today - 3650), self.today))
            if doc_type is DocumentType.HEALTH_INSURANCE:
                year_start = date(self.as_of.year, 1, 1)
                docs.append(
                    RegistryDocument(
                        doc_type,
                        f"{rng.choice(_HEALTH_PREFIXES)}{rng.randint(1, 5)}"
                        f"{p.province[1:]}{number:010d}",
                        f"Bảo hiểm xã hội {province}",
                        year_start,
                        date(self.as_of.year, 12, 31),
                    )
                )
            elif doc_type is DocumentType.SOCIAL_INSURANCE:
                docs.append(
                    RegistryDocument(
                        doc_type, f"{number:010d}", "Bảo hiểm xã hội Việt Nam", since, None
                    )
                )
            elif doc_type is DocumentType.TAX_CODE:
                docs.append(
                    RegistryDocument(
                        doc_type,
                        f"8{_permute(position, (372_193, 5, 10**9)):09d}",
                        f"Cục Thuế {province}",
                        since,
                        None,
                    )
                )
            elif doc_type is DocumentType.DRIVING_LICENCE and age < 75:
                motorbike = rng.random() < 0.5  # A1: no end of validity
                docs.append(
                    RegistryDocument(
                        doc_type,
                        f"{p.province[1:]}{_permute(position, (918_273, 17, 10**10)):010d}",
                        f"Sở Giao thông vận tải {province}",
                        since,
                        None if motorbike else since + timedelta(days=3652),
                    )
                )
            elif doc_type is DocumentType.VEHICLE_REGISTRATION:
                plate = _permute(position, (1_234_567, 0, 26 * 100_000))
                letter, digits = divmod(plate, 100_000)
                docs.append(
                    RegistryDocument(
                        doc_type,
                        f"{rng.choice(PLATE_PREFIXES)}{chr(65 + letter)}{digits:05d}",
                        f"Công an {province}",
                        since,
                        None,
                    )
                )
        return tuple(docs)

    # -- the chunk ---------------------------------------------------------
    def people(self) -> list[RegistryPerson]:
        protos = self.protopeople()
        n = len(protos)
        faces = self.vectors.standard_normal((n, FACE_DIMENSIONS), dtype=np.float32)
        faces /= np.linalg.norm(faces, axis=1, keepdims=True)
        prints = self.vectors.standard_normal(
            (n, len(FINGERS), FINGERPRINT_DIMENSIONS), dtype=np.float32
        )
        prints /= np.linalg.norm(prints, axis=2, keepdims=True)
        face_bytes = faces.astype("<f4").tobytes()
        print_bytes = prints.astype("<f4").tobytes()
        face_size = 4 * FACE_DIMENSIONS
        print_size = 4 * FINGERPRINT_DIMENSIONS
        ids: list[str] = []
        people: list[RegistryPerson] = []
        fingerprint_born = self.today - int(FINGERPRINT_AGE * _YEAR)
        for i, p in enumerate(protos):
            position = self.first + i
            if p.nationality is not None:
                pid = make_foreigner_id(_permute(position, self.foreign_serial)).value
                name = self._foreign_name(self.rng, p.nationality, p.gender)
                passport: Passport | None = self._passport(p.nationality, position, p.born)
                kind = PersonKind.FOREIGNER
            else:
                pid = self._citizen_id(p)
                name = self._vietnamese_name(p)
                passport = None
                kind = PersonKind.CITIZEN
            ids.append(pid)
            fingerprints: dict[Finger, Template] = {}
            if p.born.toordinal() <= fingerprint_born:
                at = i * len(FINGERS) * print_size
                fingerprints = {
                    finger: Template(print_bytes[at + k * print_size : at + (k + 1) * print_size])
                    for k, finger in enumerate(FINGERS)
                }
            people.append(
                RegistryPerson(
                    Demographics(pid, name, p.born, p.gender),
                    kind=kind,
                    passport=passport,
                    portrait=Template(face_bytes[i * face_size : (i + 1) * face_size]),
                    fingerprints=fingerprints,
                    guardians=tuple(ids[g] for g in p.guardians),
                    documents=() if passport is not None else self._documents(p, position),
                )
            )
        return people


def _cumulative(weights: Sequence[float]) -> list[float]:
    return list(itertools.accumulate(weights))


def _pick(rng: random.Random, items: Sequence[T], cumulative: list[float]) -> T:
    return items[bisect.bisect(cumulative, rng.random() * cumulative[-1])]


_FAMILY_LIST = [name for name, _ in FAMILY_NAMES]
_FAMILY_CUMULATIVE = _cumulative([weight for _, weight in FAMILY_NAMES])
_PROVINCE_LIST = sorted(province_codes())
_PROVINCE_CUMULATIVE = _cumulative(
    [PROVINCE_WEIGHTS.get(code, PROVINCE_DEFAULT_WEIGHT) for code in _PROVINCE_LIST]
)
_NATIONALITY_CUMULATIVE = _cumulative([n.weight for n in NATIONALITIES])
# The shipped demo registry's numbers (the first column of its CSV file).
_DEMO_IDS = frozenset(
    line.split(",", 1)[0]
    for line in resources.files("eid_service.data")
    .joinpath("demo_citizens.csv")
    .read_text("utf-8")
    .splitlines()[1:]
)


def chunks(count: int) -> int:
    """How many chunks make `count` people."""
    return -(-count // CHUNK_SIZE)


def generate_chunk(seed: int, chunk: int, count: int, as_of: date) -> list[RegistryPerson]:
    """People `chunk * CHUNK_SIZE` onwards of the registry of `count` people
    that `seed` makes as of `as_of` (at most CHUNK_SIZE of them)."""
    if not 0 < count <= MAX_COUNT:
        raise ValueError(f"the count must be between 1 and {MAX_COUNT}")
    size = min(CHUNK_SIZE, count - chunk * CHUNK_SIZE)
    if size <= 0:
        raise ValueError("no such chunk")
    return _Chunk(seed, chunk, size, as_of).people()


def generate(seed: int, count: int, as_of: date) -> list[RegistryPerson]:
    """The whole registry in one process (tests and small counts)."""
    return [p for c in range(chunks(count)) for p in generate_chunk(seed, c, count, as_of)]
