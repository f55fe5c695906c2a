"""The SQL relying-party repository on each backend keeps the promises of the
in-memory one the use-case tests run against; migration 0009 keeps existing
parties working as they did."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import bindparam, text

from eid_service.domain.party import PartyStatus, RelyingParty, VerifyMode
from eid_service.domain.share import Attribute
from eid_service.security.field_cipher import FieldCipher
from eid_service.security.keyed_hash import KeyedHasher
from eid_service.security.keys import generate_key_ring
from eid_service.store.database import create_engine
from eid_service.store.migrate import alembic_config
from eid_service.store.models import UTCDateTime
from eid_service.store.protection import DataProtection
from eid_service.store.uow import SqlUnitOfWork
from eid_service.use_cases.ports import PartyRecord, Repositories, UnitOfWork
from tests.unit.fake_store import FakeUnitOfWork

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
BANK = RelyingParty(
    "rp_bank",
    "Ngân hàng Demo",
    frozenset({Attribute.FULL_NAME, Attribute.PERSONAL_ID}),
    frozenset({VerifyMode.PASSWORD, VerifyMode.QR_SHARE}),
    contact="it@demobank.vn",
    rate_per_minute=1200,
    citizen_rate_per_minute=20,
)
CLINIC = RelyingParty("rp_clinic", "Clinic", frozenset({Attribute.BIRTH_DATE}))
# Bound to a client certificate (mutual TLS) from the start.
TELCO = RelyingParty(
    "rp_telco",
    "Telco",
    frozenset(),
    frozenset({VerifyMode.DEMOGRAPHIC}),
    client_cert_sha256=bytes(range(32)),
)
CERT = bytes(range(32, 64))


def _new_uow(url: str) -> SqlUnitOfWork:
    ring = generate_key_ring()
    return SqlUnitOfWork(url, DataProtection(FieldCipher(ring), KeyedHasher(ring.hmac_key)))


async def _story(uow: UnitOfWork) -> list[object]:
    """Every Parties method, with what each answers (keys as which party they open)."""
    seen: list[object] = []

    async def do(work: Callable[[Repositories], object]) -> None:
        seen.append(await uow.atomically(work))

    def opens(key: str | None, at: datetime) -> Callable[[Repositories], object]:
        def look(r: Repositories) -> object:
            found = r.parties.by_api_key(str(key), at)
            return None if found is None else (found.id, found.status)

        return look

    def create(party: RelyingParty, at: datetime) -> Callable[[Repositories], str]:
        return lambda r: r.parties.create(party, at)

    keys = [
        await uow.atomically(create(party, T0 + timedelta(seconds=n)))
        for n, party in enumerate((BANK, CLINIC, TELCO))
    ]
    await do(lambda r: r.parties.get(BANK.id))
    await do(opens(keys[0], T0))
    await do(opens("eidk_wrong", T0))
    await do(lambda r: r.parties.set_status(BANK.id, PartyStatus.SUSPENDED, T0))
    await do(lambda r: r.parties.set_status(BANK.id, PartyStatus.SUSPENDED, T0 + timedelta(1)))
    await do(lambda r: r.parties.get(BANK.id))
    await do(opens(keys[0], T0))
    await do(lambda r: r.parties.set_status(BANK.id, PartyStatus.ACTIVE, T0))
    await do(lambda r: r.parties.get(BANK.id))
    rotated = await uow.atomically(
        lambda r: r.parties.rotate_key(CLINIC.id, timedelta(hours=1), T0)
    )
    await do(opens(keys[1], T0 + timedelta(minutes=59)))
    await do(opens(keys[1], T0 + timedelta(hours=1)))
    await do(opens(rotated, T0 + timedelta(hours=1)))
    await do(lambda r: r.parties.get(CLINIC.id))
    again = await uow.atomically(lambda r: r.parties.rotate_key(CLINIC.id, timedelta(0), T0))
    await do(opens(rotated, T0))  # the overlap was 0
    await do(opens(again, T0))
    await do(lambda r: r.parties.by_api_key(keys[2], T0))
    await do(lambda r: r.parties.set_client_certificate(BANK.id, CERT))
    await do(lambda r: r.parties.by_api_key(keys[0], T0))
    await do(lambda r: r.parties.set_client_certificate(BANK.id, None))
    await do(lambda r: r.parties.get(BANK.id))
    await do(lambda r: r.parties.set_scopes(CLINIC.id, frozenset(Attribute)))  # contact too
    await do(lambda r: r.parties.get(CLINIC.id))
    await do(lambda r: r.parties.delete(TELCO.id, T0))
    await do(lambda r: r.parties.delete(TELCO.id, T0))
    await do(lambda r: r.parties.get(TELCO.id))
    await do(opens(keys[2], T0))
    await do(lambda r: r.parties.rotate_key(TELCO.id, timedelta(0), T0))
    await do(lambda r: r.parties.set_status(TELCO.id, PartyStatus.SUSPENDED, T0))
    await do(lambda r: r.parties.set_client_certificate(TELCO.id, CERT))
    await do(lambda r: r.parties.set_scopes(TELCO.id, frozenset(Attribute)))
    await do(lambda r: [p.party.id for p in r.parties.list_page(None, 10)])
    await do(lambda r: [p.party.id for p in r.parties.list_page(BANK.id, 1)])
    await do(lambda r: [p.party.id for p in r.parties.list_page(TELCO.id, 10)])
    await do(lambda r: r.parties.list_page(CLINIC.id, 10))
    return seen


def test_the_sql_repository_answers_as_the_fake_does(database_url: str) -> None:
    uow = _new_uow(database_url)
    try:
        stored = asyncio.run(_story(uow))
    finally:
        uow.close()
    expected = asyncio.run(_story(FakeUnitOfWork()))
    assert stored == expected
    first = stored[0]
    assert isinstance(first, PartyRecord) and first.party == BANK
    assert stored[-4] == [BANK.id, CLINIC.id]
    bound = [s for s in stored if isinstance(s, RelyingParty)]
    assert [p.client_cert_sha256 for p in bound] == [TELCO.client_cert_sha256, CERT]
    clinic = [s.party for s in stored if isinstance(s, PartyRecord) and s.party.id == CLINIC.id]
    assert clinic[-1].scopes == frozenset(Attribute)  # the contact attributes read back


def test_the_migration_keeps_earlier_parties_active_with_password_and_qr_share(
    database_url: str,
) -> None:
    cfg = alembic_config(database_url)
    command.downgrade(cfg, "0008")
    engine = create_engine(database_url)
    insert = text(
        "INSERT INTO relying_parties (id, name, api_key_digest, scopes, created_at)"
        " VALUES ('rp_old', 'Old Bank', :digest, 'full_name,gender', :at)"
    ).bindparams(bindparam("at", type_=UTCDateTime()))
    try:
        with engine.begin() as connection:
            connection.execute(insert, {"digest": b"d" * 32, "at": T0})
    finally:
        engine.dispose()
    command.upgrade(cfg, "head")
    uow = _new_uow(database_url)
    try:
        record = asyncio.run(uow.read(lambda r: r.parties.get("rp_old")))
    finally:
        uow.close()
    assert record is not None
    assert record.party == RelyingParty(
        "rp_old",
        "Old Bank",
        frozenset({Attribute.FULL_NAME, Attribute.GENDER}),
        frozenset({VerifyMode.PASSWORD, VerifyMode.QR_SHARE}),
    )
    assert (record.created_at, record.suspended_at, record.previous_key_expires_at) == (
        T0,
        None,
        None,
    )
