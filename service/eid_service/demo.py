"""The synthetic demo population registry shipped with the package.

Every demo person has an enrolled portrait: a face feature vector derived from
their ID number alone (a unit vector drawn from a generator seeded with a hash
of the number), so that tests, the walkthrough and load generators can make a
matching "capture" without reading the database: `portrait_capture` returns
the enrolled vector turned by a chosen angle, i.e. with a chosen cosine
similarity to it. This stands in for the enrolment camera and the app's
feature extractor; it is demo data, like the people.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import random
import struct
from datetime import date
from importlib import resources

from eid_service.domain.biometrics import FACE_DIMENSIONS, Template, template_of
from eid_service.domain.citizen import Demographics, Gender
from eid_service.domain.personal_id import make_personal_id, province_codes
from eid_service.domain.registry_person import Passport, PersonKind, RegistryPerson

# How close the demo "capture" is to the enrolled portrait: a good capture,
# well above the default threshold (0.60), as two photos of one face are.
DEMO_CAPTURE_SIMILARITY = 0.90


def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files("eid_service.data").joinpath(name).read_text("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def _demographics(row: dict[str, str]) -> Demographics:
    return Demographics(
        personal_id=row["personal_id"],
        full_name=row["full_name"],
        birth_date=date.fromisoformat(row["birth_date"]),
        gender=Gender(row["gender"]),
    )


def demo_citizens() -> list[Demographics]:
    return [_demographics(row) for row in _rows("demo_citizens.csv")]


def demo_foreigners() -> list[RegistryPerson]:
    """Foreigners living in Viet Nam, with passports, assigned ID numbers
    (900...) and enrolled portraits."""
    return [
        RegistryPerson(
            _demographics(row),
            kind=PersonKind.FOREIGNER,
            passport=Passport(
                number=row["passport_number"],
                nationality=row["nationality"],
                issue_date=date.fromisoformat(row["passport_issue_date"]),
                issue_place=row["passport_issue_place"],
            ),
            portrait=enrolled_portrait(row["personal_id"]),
        )
        for row in _rows("demo_foreigners.csv")
    ]


def demo_person(citizen: Demographics, guardians: tuple[str, ...] = ()) -> RegistryPerson:
    """A demo citizen as the registry holds them: with their enrolled portrait
    (and, for a child, the parents or guardians the registry records)."""
    return RegistryPerson(
        citizen, portrait=enrolled_portrait(citizen.personal_id), guardians=guardians
    )


def demo_people(synthetic: int = 0) -> list[RegistryPerson]:
    """What `eid-server load-demo` loads: the demo citizens and foreigners,
    then `synthetic` extra adults, each with an enrolled portrait."""
    people = [*(demo_person(c) for c in demo_citizens()), *demo_foreigners()]
    if synthetic:
        people.extend(demo_person(c) for c in synthetic_citizens(synthetic))
    return people


def _unit_gaussian(seed: bytes) -> list[float]:
    rng = random.Random(seed)  # noqa: S311 (synthetic demo data, not secrets)
    values = [rng.gauss(0.0, 1.0) for _ in range(FACE_DIMENSIONS)]
    norm = math.sqrt(math.fsum(v * v for v in values))
    return [v / norm for v in values]


def enrolled_portrait(personal_id: str) -> Template:
    """The portrait the demo registry enrolled for this ID number."""
    digest = hashlib.sha256(b"eid demo portrait\x00" + personal_id.encode()).digest()
    return template_of(_unit_gaussian(digest))


def portrait_capture(
    personal_id: str, similarity: float = DEMO_CAPTURE_SIMILARITY, *, attempt: int = 0
) -> bytes:
    """A capture (the wire form: float32 little-endian) of the demo person with
    this ID number, whose cosine similarity with the enrolled portrait is
    `similarity` (to float32 precision); `attempt` picks another capture of
    the same face (another direction of the same angle)."""
    if not -1.0 <= similarity <= 1.0:
        raise ValueError("a cosine similarity is between -1 and 1")
    enrolled = list(enrolled_portrait(personal_id).values())
    seed = hashlib.sha256(f"eid demo capture\x00{personal_id}\x00{attempt}".encode()).digest()
    noise = _unit_gaussian(seed)
    # The noise's part across the enrolled direction, made a unit vector.
    along = math.fsum(n * e for n, e in zip(noise, enrolled, strict=True))
    across = [n - along * e for n, e in zip(noise, enrolled, strict=True)]
    norm = math.sqrt(math.fsum(a * a for a in across))
    turn = math.sqrt(max(0.0, 1.0 - similarity * similarity))
    values = [similarity * e + turn * a / norm for e, a in zip(enrolled, across, strict=True)]
    return struct.pack(f"<{FACE_DIMENSIONS}f", *values)


_FAMILY = (
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Hoàng",
    "Huỳnh",
    "Phan",
    "Vũ",
    "Võ",
    "Đặng",
    "Bùi",
    "Đỗ",
)
_MIDDLE = {Gender.MALE: ("Văn", "Hữu", "Đức", "Quốc"), Gender.FEMALE: ("Thị", "Ngọc", "Thu", "Kim")}
_GIVEN = {
    Gender.MALE: ("Minh", "Bảo", "Dũng", "Hùng", "Khang", "Long", "Nam", "Phúc", "Sơn", "Tuấn"),
    Gender.FEMALE: ("Lan", "Hương", "Linh", "Mai", "Ngân", "Phương", "Thảo", "Trang", "Vy", "Yến"),
}


def synthetic_citizens(count: int, seed: int = 0) -> list[Demographics]:
    """`count` adults with valid, distinct ID numbers, the same for the same seed.

    For load tests that need many registrable people (every Register needs a
    citizen of its own); the serials start at 900000 so they do not meet the
    demo registry's numbers. `eid-server load-demo --synthetic N` enrols
    each with `enrolled_portrait`."""
    rng = random.Random(seed)  # noqa: S311 (synthetic test data, not secrets)
    provinces = sorted(province_codes())
    made: dict[str, Demographics] = {}
    serial = 900_000
    while len(made) < count:
        gender = Gender.MALE if rng.random() < 0.5 else Gender.FEMALE
        born = date(rng.randint(1950, 2004), rng.randint(1, 12), rng.randint(1, 28))
        name = f"{rng.choice(_FAMILY)} {rng.choice(_MIDDLE[gender])} {rng.choice(_GIVEN[gender])}"
        pid = make_personal_id(rng.choice(provinces), born, gender, serial % 1_000_000)
        serial += 1
        made.setdefault(pid.value, Demographics(pid.value, name, born, gender))
    return list(made.values())
