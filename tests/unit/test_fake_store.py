"""The in-memory store keeps the promises of the SQL one that use cases rely on."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest

from eid_service.domain.citizen import Demographics, Gender
from eid_service.domain.credential_policy import SOURCE_WINDOW, SUBJECT_CEILING
from eid_service.domain.errors import InvalidInput
from eid_service.domain.share import Attribute
from eid_service.domain.share_grant import ShareGrant
from eid_service.use_cases.ports import (
    AuditEntry,
    BreakKind,
    BrokenLink,
    ChainCheck,
    Repositories,
    RequestKey,
)
from tests.unit.fake_store import (
    START,
    FakePasswordHashing,
    FakeUnitOfWork,
    subject_of,
)
from tests.unit.use_case_kit import LAN, World

NOW = START
SUBJECT = subject_of("001190791514")
CITIZEN = Demographics("001190791514", "Nguyễn Thị Lan", date(1990, 5, 17), Gender.FEMALE)


async def test_a_transaction_that_raises_leaves_nothing_behind() -> None:
    uow = FakeUnitOfWork()

    def half_done(r: Repositories) -> None:
        r.registry.put(CITIZEN)
        r.audit.append(AuditEntry(SUBJECT, None, None, "register", "ok", NOW))
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        await uow.atomically(half_done)
    assert await uow.read(lambda r: r.registry.find(CITIZEN.personal_id)) is None
    assert await uow.read(lambda r: r.audit.history(SUBJECT)) == []
    assert (uow.writes, uow.reads) == (1, 2)


async def test_a_read_sees_committed_state_and_keeps_nothing() -> None:
    uow = FakeUnitOfWork()
    await uow.atomically(lambda r: r.registry.put(CITIZEN))
    assert await uow.read(lambda r: r.registry.find(CITIZEN.personal_id)) == CITIZEN
    await uow.read(lambda r: r.audit.append(AuditEntry(SUBJECT, None, None, "x", "y", NOW)))
    assert await uow.read(lambda r: r.audit.history(SUBJECT)) == []


def test_the_audit_chain_shows_an_edited_or_removed_event() -> None:
    uow = FakeUnitOfWork()
    for outcome in ("ok", "rejected", "ok"):
        _append(uow, AuditEntry(SUBJECT, None, None, "sign_in", outcome, NOW))
    assert uow.run_now(lambda r: r.audit.check_chain(SUBJECT)) == ChainCheck(3, None)
    assert [e.seq for e in uow.run_now(lambda r: r.audit.history(SUBJECT))] == [1, 2, 3]

    chain = uow.state.audit_events[SUBJECT]
    original = chain[1]
    chain[1] = replace(original, event=replace(original.event, outcome="ok"))
    broken = uow.run_now(lambda r: r.audit.check_chain(SUBJECT)).broken
    assert broken == BrokenLink(SUBJECT, 2, original.event.id, BreakKind.DIGEST_MISMATCH)

    chain[1] = original
    del chain[2]
    broken = uow.run_now(lambda r: r.audit.check_chain(SUBJECT)).broken
    assert broken == BrokenLink(SUBJECT, 3, None, BreakKind.HEAD_MISMATCH)


def _append(uow: FakeUnitOfWork, entry: AuditEntry) -> None:
    uow.run_now(lambda r: r.audit.append(entry))


def test_attempts_are_counted_per_source_with_a_window() -> None:
    uow = FakeUnitOfWork()

    def reserve(source: str, at: datetime = NOW) -> timedelta | None:
        return uow.run_now(lambda r: r.attempts.reserve(SUBJECT, source, at))

    assert [reserve("a") for _ in range(5)] == [None] * 5
    assert reserve("a") == SOURCE_WINDOW
    assert reserve("a", NOW + timedelta(minutes=5)) == SOURCE_WINDOW - timedelta(minutes=5)
    assert reserve("b") is None
    assert reserve("a", NOW + SOURCE_WINDOW) is None  # the window passed

    uow.run_now(lambda r: r.attempts.succeeded(SUBJECT, "a"))
    assert [reserve("a", NOW + SOURCE_WINDOW) for _ in range(5)] == [None] * 5


def test_refused_attempts_are_not_added_to_the_subject_total() -> None:
    uow = FakeUnitOfWork()
    for _ in range(8):
        uow.run_now(lambda r: r.attempts.reserve(SUBJECT, "a", NOW))
    assert uow.state.attempts[(SUBJECT, "*")].failures == 5


def test_a_subject_under_attack_gives_each_new_source_one_try() -> None:
    uow = FakeUnitOfWork()

    def attack(r: Repositories) -> None:
        for i in range(SUBJECT_CEILING + 1):
            assert r.attempts.reserve(SUBJECT, f"bot{i}", NOW) is None

    uow.run_now(attack)
    assert uow.run_now(lambda r: r.attempts.reserve(SUBJECT, "new", NOW)) is None
    assert uow.run_now(lambda r: r.attempts.reserve(SUBJECT, "new", NOW)) == SOURCE_WINDOW


async def test_activation_codes_are_counted_and_consumed_conditionally(world: World) -> None:
    await world.register(LAN)
    uow = world.uow
    record = uow.run_now(lambda r: r.activation_codes.latest_for(_account_id(r)))
    assert record is not None
    code_id, expiry = record.id, record.expires_at
    guesses = [uow.run_now(lambda r: r.activation_codes.count_wrong_guess(code_id, 2))]
    guesses.append(uow.run_now(lambda r: r.activation_codes.count_wrong_guess(code_id, 2)))
    assert guesses == [True, True]
    assert not uow.run_now(lambda r: r.activation_codes.count_wrong_guess(code_id, 2))
    assert not uow.run_now(lambda r: r.activation_codes.consume(code_id, NOW, 2))
    assert not uow.run_now(lambda r: r.activation_codes.consume(code_id, expiry, 5))
    assert uow.run_now(lambda r: r.activation_codes.consume(code_id, NOW, 5))
    assert not uow.run_now(lambda r: r.activation_codes.consume(code_id, NOW, 5))
    code = world.activation_code(LAN)
    assert uow.run_now(lambda r: r.activation_codes.any_consumed_matches(_account_id(r), code))


def _account_id(r: Repositories) -> str:
    account = r.accounts.find_by_personal_id(LAN.personal_id)
    assert account is not None
    return account.id


async def test_a_share_is_redeemed_once_before_expiry_by_its_audience(world: World) -> None:
    account = await world.active(LAN)
    grant = ShareGrant(
        "shr_1", account.id, frozenset({Attribute.FULL_NAME}), "rp_a", NOW, NOW + SOURCE_WINDOW
    )
    uow = world.uow
    uow.run_now(lambda r: r.shares.add(grant))
    assert uow.run_now(lambda r: r.shares.redeem("shr_1", "rp_b", NOW)) is None
    assert uow.run_now(lambda r: r.shares.redeem("shr_1", "rp_a", grant.expires_at)) is None
    redeemed = uow.run_now(lambda r: r.shares.redeem("shr_1", "rp_a", NOW))
    assert redeemed is not None and redeemed.attributes == grant.attributes
    assert uow.run_now(lambda r: r.shares.redeem("shr_1", "rp_a", NOW)) is None
    assert uow.run_now(lambda r: r.shares.get("shr_1")) == replace(
        grant, redeemed_at=NOW, redeem_count=1, last_redeemed_at=NOW
    )


def test_a_request_id_is_tied_to_its_request() -> None:
    uow = FakeUnitOfWork()
    key = RequestKey("verify:party:x", "r1", b"first")
    uow.run_now(lambda r: r.idempotency.save(key, b"answer", NOW, NOW + timedelta(hours=24)))
    assert uow.run_now(lambda r: r.idempotency.find(key)) == b"answer"
    with pytest.raises(InvalidInput) as caught:
        uow.run_now(lambda r: r.idempotency.find(replace(key, fingerprint=b"other")))
    assert caught.value.reason == "REQUEST_ID_REUSED"


async def test_password_checks_are_counted_even_without_a_hash() -> None:
    hashing = FakePasswordHashing()
    stored = await hashing.hash("a password")
    assert await hashing.verify(stored, "a password")
    assert not await hashing.verify(stored, "another one")
    assert not await hashing.verify(None, "a password")
    assert (hashing.hashes, hashing.verifications) == (1, 3)
