"""The synthetic demo population registry shipped with the package."""

from __future__ import annotations

import csv
import io
from datetime import date
from importlib import resources

from eid_service.domain.citizen import Demographics, Gender


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
