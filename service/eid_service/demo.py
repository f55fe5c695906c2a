"""The synthetic demo population registry shipped with the package."""

from __future__ import annotations

import csv
import io
import random
from datetime import date
from importlib import resources

from eid_service.domain.citizen import Demographics, Gender
from eid_service.domain.personal_id import make_personal_id, province_codes


def demo_citizens() -> list[Demographics]:
    text = resources.files("eid_service.data").joinpath("demo_citizens.csv").read_text("utf-8")
    return [
        Demographics(
            personal_id=row["personal_id"],
            full_name=row["full_name"],
            birth_date=date.fromisoformat(row["birth_date"]),
            gender=Gender(row["gender"]),
        )
        for row in csv.DictReader(io.StringIO(text))
    ]


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
    demo registry's numbers."""
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
