"""The national population registry, as far as registration needs it: the
living citizens (a recorded death hides the record from `find`)."""

from __future__ import annotations

from datetime import date

from eid_service.domain.citizen import Demographics, Gender
from eid_service.store.repositories.base import Repository
from eid_service.store.sql import Sql

_FIND = Sql(
    "SELECT personal_id_enc, full_name_enc, birth_date_enc, gender FROM registry_citizens"
    " WHERE personal_id_index = :index AND death_date_enc IS NULL"
)
_MARK_DECEASED = Sql(
    "UPDATE registry_citizens SET death_date_enc = :died_on"
    " WHERE personal_id_index = :index AND death_date_enc IS NULL"
)
_INSERT = Sql(
    "INSERT INTO registry_citizens"
    " (personal_id_index, personal_id_enc, full_name_enc, birth_date_enc, gender)"
    " VALUES (:index, :personal_id, :full_name, :birth_date, :gender)"
    " ON CONFLICT (personal_id_index) DO NOTHING"
)


class PopulationRegistry(Repository):
    def find(self, personal_id: str) -> Demographics | None:
        index = self._p.hasher.blind_index(personal_id)
        row = self._db.one(_FIND, {"index": index})
        if row is None:
            return None
        ctx = f"registry:{index.hex()}"
        return Demographics(
            personal_id=self._p.open(row[0], f"{ctx}:personal_id"),
            full_name=self._p.open(row[1], f"{ctx}:full_name"),
            birth_date=date.fromisoformat(self._p.open(row[2], f"{ctx}:birth_date")),
            gender=Gender(row[3]),
        )

    def put(self, citizen: Demographics) -> bool:
        index = self._p.hasher.blind_index(citizen.personal_id)
        ctx = f"registry:{index.hex()}"
        added = self._db.count(
            _INSERT,
            {
                "index": index,
                "personal_id": self._p.seal(citizen.personal_id, f"{ctx}:personal_id"),
                "full_name": self._p.seal(citizen.full_name, f"{ctx}:full_name"),
                "birth_date": self._p.seal(citizen.birth_date.isoformat(), f"{ctx}:birth_date"),
                "gender": citizen.gender.value,
            },
        )
        return added == 1

    def mark_deceased(self, personal_id: str, died_on: date) -> bool:
        index = self._p.hasher.blind_index(personal_id)
        sealed = self._p.seal(died_on.isoformat(), f"registry:{index.hex()}:death_date")
        return self._db.count(_MARK_DECEASED, {"index": index, "died_on": sealed}) == 1
