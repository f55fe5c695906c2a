"""The SQL token buckets on each backend answer as the in-memory ones the
use-case tests run against, never admit more than a bucket holds under
concurrent takes from two units of work (two server processes), and an
audit chain written before migration 0011 still verifies after it."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import bindparam, text

from eid_service.domain.errors import TooManyAttempts
from eid_service.domain.party import RelyingParty
from eid_service.domain.party_limits import (
    PARTY_CITIZEN_RATE_LIMITED,
    PARTY_RATE_LIMITED,
    TokenBucket,
    citizen_bucket,
    party_bucket,
)
from eid_service.security.field_cipher import FieldCipher
from eid_service.security.keyed_hash import KeyedHasher
from eid_service.security.keys import generate_key_ring
from eid_service.store.database import create_engine
from eid_service.store.migrate import alembic_config
from eid_service.store.models import UTCDateTime
from eid_service.store.protection import DataProtection
from eid_service.store.repositories.audit import AUDIT_PURPOSE, _canonical
from eid_service.store.uow import SqlUnitOfWork
from eid_service.use_cases.audit_check import verify_audit_chains
from eid_service.use_cases.party_limits import admit
from eid_service.use_cases.ports import AuditEntry, AuditEvent, Repositories, UnitOfWork
from tests.unit.fake_store import FakeUnitOfWork

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
# 3 a minute: a burst of 3, then one every 20 seconds; 1 a minute per citizen.
BANK = RelyingParty("rp_bank", "Bank", frozenset(), rate_per_minute=3, citizen_rate_per_minute=1)
ALICE, BOB = b"a" * 32, b"b" * 32


def _new_uow(url: str, protection: DataProtection | None = None) -> SqlUnitOfWork:
    if protection is None:
        ring = generate_key_ring()
        protection = DataProtection(FieldCipher(ring), KeyedHasher(ring.hmac_key))
    return SqlUnitOfWork(url, protection)


async def _story(uow: UnitOfWork) -> list[object]:
    """Takes as a call makes them (a refusal raised, so rolled back), with
    what each answered: None, or the refusal's reason and wait."""
    seen: list[object] = []

    async def call(at: datetime, citizen: bytes | None = None) -> None:
        def take(r: Repositories) -> None:
            admit(r, BANK, at, citizen=citizen)

        try:
            seen.append(await uow.atomically(take))
        except TooManyAttempts as refused:
            seen.append((refused.reason, refused.metadata["retry_after_seconds"]))

    async def raw(at: datetime, which: Callable[[], list[TokenBucket]], count: int = 1) -> None:
        def take(r: Repositories) -> object:
            refused = r.rate_buckets.take(which(), at, count)
            return [(b.reason, round(w, 3)) for b, w in refused]

        seen.append(await uow.atomically(take))

    await call(T0, ALICE)
    await call(T0, ALICE)  # Alice's bucket is empty; the party's token comes back
    await call(T0, BOB)
    await call(T0 + timedelta(seconds=1))
    await call(T0 + timedelta(seconds=2))  # the party's 3 are gone: 18 s to the next
    await call(T0 + timedelta(seconds=20), BOB)  # one party token, but Bob has none
    await call(T0 + timedelta(seconds=21))
    await call(T0 + timedelta(seconds=30))
    await raw(T0 + timedelta(seconds=61), lambda: [party_bucket(BANK), citizen_bucket(BANK, BOB)])
    await raw(T0 + timedelta(seconds=61), lambda: [citizen_bucket(BANK, BOB)])
    # A lowered limit counts at once: what the bucket holds is capped by it.
    lowered = RelyingParty("rp_bank", "Bank", frozenset(), rate_per_minute=1)
    await raw(T0 + timedelta(seconds=200), lambda: [party_bucket(lowered)])
    await raw(T0 + timedelta(seconds=200), lambda: [party_bucket(lowered)])
    # A lease: 40 of a bucket of 60 at once, then 40 more is too many.
    big = RelyingParty("rp_big", "Big", frozenset(), rate_per_minute=60)
    await raw(T0 + timedelta(seconds=200), lambda: [party_bucket(big)], 40)
    await raw(T0 + timedelta(seconds=210), lambda: [party_bucket(big)], 40)
    await raw(T0 + timedelta(seconds=230), lambda: [party_bucket(big)], 40)
    seen.append(await uow.atomically(lambda r: r.rate_buckets.purge_full(T0, 100)))
    seen.append(
        await uow.atomically(lambda r: r.rate_buckets.purge_full(T0 + timedelta(hours=1), 100))
    )
    return seen


def test_the_sql_buckets_answer_as_the_fake_ones_do(database_url: str) -> None:
    uow = _new_uow(database_url)
    try:
        stored = asyncio.run(_story(uow))
    finally:
        uow.close()
    expected = asyncio.run(_story(FakeUnitOfWork()))
    assert stored == expected
    assert stored[:9] == [
        None,
        (PARTY_CITIZEN_RATE_LIMITED, "60.000"),
        None,
        None,
        (PARTY_RATE_LIMITED, "18.000"),
        (PARTY_CITIZEN_RATE_LIMITED, "40.000"),
        None,
        (PARTY_RATE_LIMITED, "10.000"),
        [],
    ]
    assert stored[9] == [(PARTY_CITIZEN_RATE_LIMITED, 60.0)]
    assert stored[10:] == [
        [],
        [(PARTY_RATE_LIMITED, 60.0)],
        [],
        [(PARTY_RATE_LIMITED, 0.0)],  # 30 there: a whole token, not 40
        [],  # 20 + 30 * 1 = 50
        0,
        4,
    ]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_concurrent_takes_from_two_processes_never_exceed_the_bucket(database_url: str) -> None:
    """Two units of work (as two server processes have), 40 takes each at
    once on a bucket of 25 that does not refill meanwhile: 25 pass in all."""
    ring = generate_key_ring()
    protection = DataProtection(FieldCipher(ring), KeyedHasher(ring.hmac_key))
    party = RelyingParty("rp_busy", "Busy", frozenset(), rate_per_minute=25)
    uows = [_new_uow(database_url, protection) for _ in range(2)]

    async def one(uow: UnitOfWork) -> bool:
        try:
            await uow.atomically(lambda r: admit(r, party, T0))
        except TooManyAttempts:
            return False
        return True

    async def all_at_once() -> list[bool]:
        return await asyncio.gather(*(one(uows[i % 2]) for i in range(80)))

    try:
        admitted = asyncio.run(all_at_once())
    finally:
        for uow in uows:
            uow.close()
    assert sum(admitted) == 25


def test_a_chain_written_before_migration_0011_still_verifies(database_url: str) -> None:
    """Events stored without reason, request id and trace id keep their
    digests: `eid-server audit verify` passes on them after the upgrade,
    beside new events that carry the new fields."""
    cfg = alembic_config(database_url)
    command.downgrade(cfg, "0010")
    ring = generate_key_ring()
    protection = DataProtection(FieldCipher(ring), KeyedHasher(ring.hmac_key))
    subject = secrets.token_bytes(32)
    old = AuditEvent("evt_old", None, None, "sign_in", "rejected", T0, 1)
    digest = protection.hasher.digest(AUDIT_PURPOSE, _canonical(old, None))
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO audit_events (id, subject, action, outcome, created_at, seq,"
                    " digest) VALUES ('evt_old', :subject, 'sign_in', 'rejected', :at, 1, :digest)"
                ).bindparams(bindparam("at", type_=UTCDateTime())),
                {"subject": subject, "at": T0, "digest": digest},
            )
            connection.execute(
                text("INSERT INTO audit_chains (subject, seq, head) VALUES (:subject, 1, :head)"),
                {"subject": subject, "head": digest},
            )
    finally:
        engine.dispose()
    command.upgrade(cfg, "head")
    uow = _new_uow(database_url, protection)
    try:
        new = AuditEntry(
            subject,
            None,
            None,
            "sign_in",
            "rejected",
            T0 + timedelta(seconds=1),
            reason="WRONG_PASSWORD",
            request_id="req-1",
            trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        )
        asyncio.run(uow.atomically(lambda r: r.audit.append(new)))
        report = asyncio.run(verify_audit_chains(uow))
        events = asyncio.run(uow.read(lambda r: r.audit.history(subject)))
    finally:
        uow.close()
    assert report.intact and report.events == 2
    assert [(e.reason, e.request_id, e.trace_id) for e in events] == [
        (None, None, None),
        ("WRONG_PASSWORD", "req-1", "4bf92f3577b34da6a3ce929d0e0e4736"),
    ]
