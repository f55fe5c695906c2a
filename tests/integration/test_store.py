"""The store on each backend: migrations round-trip and match the models, and a
unit of work keeps nothing it did not commit."""

from __future__ import annotations

import asyncio
from datetime import date

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from eid_service.domain.citizen import Demographics, Gender
from eid_service.domain.personal_id import make_personal_id
from eid_service.security.field_cipher import FieldCipher
from eid_service.security.keyed_hash import KeyedHasher
from eid_service.security.keys import generate_key_ring
from eid_service.store.database import create_engine, open_database
from eid_service.store.migrate import alembic_config
from eid_service.store.models import Base
from eid_service.store.protection import DataProtection
from eid_service.store.uow import UnitOfWork

BORN = date(1991, 2, 3)
CITIZEN = Demographics(
    make_personal_id("079", BORN, Gender.FEMALE, 4242).value, "Đặng Thu Trang", BORN, Gender.FEMALE
)


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def _schema_diff(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_diff)
    finally:
        await engine.dispose()


def test_migrations_match_the_models_and_downgrade_cleanly(database_url: str) -> None:
    assert asyncio.run(_schema_diff(database_url)) == []
    cfg = alembic_config(database_url)
    command.downgrade(cfg, "base")
    command.upgrade(cfg, "head")
    assert asyncio.run(_schema_diff(database_url)) == []


async def _uow_round_trip(url: str) -> tuple[Demographics | None, Demographics | None]:
    ring = generate_key_ring()
    database = open_database(url)
    protection = DataProtection(FieldCipher(ring), KeyedHasher(ring.hmac_key))
    try:
        async with UnitOfWork(database, protection) as uow:
            await uow.start_writing()
            await uow.registry.put(CITIZEN)  # left without commit
        async with UnitOfWork(database, protection) as uow:
            uncommitted = await uow.registry.find(CITIZEN.personal_id)
            await uow.start_writing()
            await uow.registry.put(CITIZEN)
            await uow.commit()
        async with UnitOfWork(database, protection) as uow:
            committed = await uow.registry.find(CITIZEN.personal_id)
        return uncommitted, committed
    finally:
        await database.dispose()


def test_unit_of_work_rolls_back_unless_committed(database_url: str) -> None:
    uncommitted, committed = asyncio.run(_uow_round_trip(database_url))
    assert uncommitted is None
    assert committed == CITIZEN
