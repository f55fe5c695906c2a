"""The national population registry, as far as registration needs it."""

from __future__ import annotations

from datetime import date

from sqlalchemy import insert, select

from eid_service.domain.citizen import Demographics, Gender
from eid_service.store.models import RegistryCitizenRow as R
from eid_service.store.repositories.base import Repository

_FIND = select(R.personal_id_enc, R.full_name_enc, R.birth_date_enc, R.gender)


class PopulationRegistry(Repository):
    def find(self, personal_id: str) -> Demographics | None:
        index = self._p.hasher.blind_index(personal_id)
        row = self._c.execute(_FIND.where(R.personal_id_index == index)).first()
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
        if self._c.scalar(select(R.gender).where(R.personal_id_index == index)) is not None:
            return False
        ctx = f"registry:{index.hex()}"
        self._c.execute(
            insert(R).values(
                personal_id_index=index,
                personal_id_enc=self._p.seal(citizen.personal_id, f"{ctx}:personal_id"),
                full_name_enc=self._p.seal(citizen.full_name, f"{ctx}:full_name"),
                birth_date_enc=self._p.seal(citizen.birth_date.isoformat(), f"{ctx}:birth_date"),
                gender=citizen.gender.value,
            )
        )
        return True
