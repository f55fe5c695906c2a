"""The national population registry, as far as registration needs it."""

from __future__ import annotations

from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from eid_service.domain.citizen import Demographics, Gender
from eid_service.store.models import RegistryCitizenRow
from eid_service.store.protection import DataProtection


class PopulationRegistry:
    def __init__(self, session: AsyncSession, protection: DataProtection) -> None:
        self._s = session
        self._p = protection

    async def find(self, personal_id: str) -> Demographics | None:
        index = self._p.hasher.blind_index(personal_id)
        row = await self._s.get(RegistryCitizenRow, index)
        if row is None:
            return None
        ctx = f"registry:{index.hex()}"
        return Demographics(
            personal_id=self._p.open(row.personal_id_enc, f"{ctx}:personal_id"),
            full_name=self._p.open(row.full_name_enc, f"{ctx}:full_name"),
            birth_date=date.fromisoformat(self._p.open(row.birth_date_enc, f"{ctx}:birth_date")),
            gender=Gender(row.gender),
        )

    async def put(self, citizen: Demographics) -> bool:
        """Adds a citizen unless present; True when added."""
        index = self._p.hasher.blind_index(citizen.personal_id)
        if await self._s.get(RegistryCitizenRow, index) is not None:
            return False
        ctx = f"registry:{index.hex()}"
        self._s.add(
            RegistryCitizenRow(
                personal_id_index=index,
                personal_id_enc=self._p.seal(citizen.personal_id, f"{ctx}:personal_id"),
                full_name_enc=self._p.seal(citizen.full_name, f"{ctx}:full_name"),
                birth_date_enc=self._p.seal(citizen.birth_date.isoformat(), f"{ctx}:birth_date"),
                gender=citizen.gender.value,
            )
        )
        return True
