"""Relying-party administration as a party's calls meet it, through a real
gRPC server on each database: suspended, resumed, deleted, a rotated key.

Servers cache parties for party_cache.TTL_SECONDS; the harness's clock moves
that cache too, so each test outwaits it by moving the clock, not by sleeping."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TypeVar

import grpc
import pytest

from eid_client.client import EidClient
from eid_client.errors import EidError
from eid_service.domain.citizen import Demographics
from eid_service.domain.errors import PreconditionFailed
from eid_service.use_cases import parties
from eid_service.use_cases.party_cache import TTL_SECONDS
from tests.integration.conftest import Party
from tests.integration.flows import PASSWORD, register_and_activate
from tests.integration.harness import ServerHarness

T = TypeVar("T")
PAST_TTL = timedelta(seconds=TTL_SECONDS + 1)


@pytest.fixture
def active(harness: ServerHarness, citizen_app: EidClient, adult: Demographics) -> Demographics:
    register_and_activate(harness, citizen_app, adult)
    return adult


def _admin(harness: ServerHarness, action: Callable[..., Awaitable[T]], *args: object) -> T:
    """A use case as `eid-server party` runs it, against the server's store."""
    return harness.run(action(harness.runtime.uow, harness.runtime.context, *args))


async def _forced(*args: object) -> parties.RotatedKey:
    return await parties.rotate_party_key(*args, force=True)  # type: ignore[arg-type]


def _outcome(harness: ServerHarness, api_key: str, citizen: Demographics) -> str:
    """ "verified", or the status code and ErrorInfo reason the party's Verify meets."""
    with EidClient(harness.target, api_key=api_key) as client:
        try:
            result = client.verify_password(personal_id=citizen.personal_id, password=PASSWORD)
        except EidError as refused:
            return f"{refused.code.name} {refused.reason}"
    return "verified" if result.verified else "not verified"


def test_a_suspended_party_is_denied_once_the_cache_lapses_and_served_when_resumed(
    harness: ServerHarness, bank: Party, active: Demographics
) -> None:
    assert _outcome(harness, bank.api_key, active) == "verified"  # now cached

    change = _admin(harness, parties.suspend_party, bank.party.id)
    assert change.changed
    # Within the cache TTL the server still serves the party it remembers.
    assert _outcome(harness, bank.api_key, active) == "verified"
    harness.clock.advance(PAST_TTL)
    assert _outcome(harness, bank.api_key, active) == "PERMISSION_DENIED PARTY_SUSPENDED"
    with pytest.raises(EidError) as caught:
        bank.client.verify_password(personal_id=active.personal_id, password=PASSWORD)
    assert caught.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert "suspended" in caught.value.message

    assert not _admin(harness, parties.suspend_party, bank.party.id).changed  # idempotent
    assert _admin(harness, parties.resume_party, bank.party.id).changed
    harness.clock.advance(PAST_TTL)
    assert _outcome(harness, bank.api_key, active) == "verified"


def test_a_deleted_party_is_unauthenticated(
    harness: ServerHarness, bank: Party, active: Demographics
) -> None:
    _, other_key = harness.create_party("Other Bank")
    _admin(harness, parties.delete_party, bank.party.id)
    harness.clock.advance(PAST_TTL)
    assert _outcome(harness, bank.api_key, active) == "UNAUTHENTICATED API_KEY_INVALID"
    assert _outcome(harness, other_key, active) == "verified"
    # The row stays (audit events name the party), marked deleted.
    rows = [
        r
        for r in harness.rows("SELECT id, disabled_at FROM relying_parties")
        if r[0] == bank.party.id
    ]
    assert len(rows) == 1 and rows[0][1] is not None


def test_a_rotated_key_and_the_old_one_both_work_during_the_overlap_only(
    harness: ServerHarness, bank: Party, active: Demographics
) -> None:
    rotated = _admin(harness, parties.rotate_party_key, bank.party.id, timedelta(hours=1))
    harness.clock.advance(PAST_TTL)  # nothing cached: each key is looked up
    assert _outcome(harness, bank.api_key, active) == "verified"
    assert _outcome(harness, rotated.api_key, active) == "verified"

    harness.clock.advance(timedelta(hours=1))
    assert _outcome(harness, bank.api_key, active) == "UNAUTHENTICATED API_KEY_INVALID"
    assert _outcome(harness, rotated.api_key, active) == "verified"


def test_a_second_rotation_inside_the_overlap_stops_the_first_old_key(
    harness: ServerHarness, bank: Party, active: Demographics
) -> None:
    second = _admin(harness, parties.rotate_party_key, bank.party.id, timedelta(hours=1))
    # Forced: a key a rotation made this recently is not rotated otherwise.
    third = _admin(harness, _forced, bank.party.id, timedelta(hours=1))
    assert third.cut_short
    harness.clock.advance(PAST_TTL)
    assert _outcome(harness, bank.api_key, active) == "UNAUTHENTICATED API_KEY_INVALID"
    assert _outcome(harness, second.api_key, active) == "verified"
    assert _outcome(harness, third.api_key, active) == "verified"


def test_verify_calls_that_find_the_party_lapsed_together_read_it_once(
    harness: ServerHarness, bank: Party, active: Demographics
) -> None:
    """A party's calls in flight when its cache entry lapses share one lookup
    (under load that is every TTL: one query, not one per call in flight)."""
    assert _outcome(harness, bank.api_key, active) == "verified"  # cached, connected
    harness.clock.advance(PAST_TTL)
    seen: list[str] = []
    observe = harness.runtime.uow.observe
    harness.runtime.uow.observe = seen.append
    start = threading.Barrier(16)

    def verify(_: int) -> bool:
        start.wait()
        answer = bank.client.verify_password(personal_id=active.personal_id, password=PASSWORD)
        return answer.verified

    try:
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(verify, range(16)))
    finally:
        harness.runtime.uow.observe = observe
    assert answers == [True] * 16
    lookups = [s for s in seen if s.startswith("SELECT") and "FROM relying_parties" in s]
    assert len(lookups) == 1, lookups


def test_rotations_at_the_same_moment_make_one_key_and_refuse_the_others(
    harness: ServerHarness, bank: Party, active: Demographics
) -> None:
    """Operators rotating one party's key at once (each told of a leak, say):
    each rotation stopped the key the one before it had just made, and only
    the last one's key worked, though every operator was shown one. One
    rotates; every other one finds the key it just made and is refused,
    changing nothing."""
    uow, ctx = harness.runtime.uow, harness.runtime.context

    async def at_once() -> list[parties.RotatedKey | BaseException]:
        rotations = (
            parties.rotate_party_key(uow, ctx, bank.party.id, timedelta(hours=1)) for _ in range(16)
        )
        return list(await asyncio.gather(*rotations, return_exceptions=True))

    outcomes = harness.run(at_once())
    rotated = [o for o in outcomes if isinstance(o, parties.RotatedKey)]
    refused = [o for o in outcomes if not isinstance(o, parties.RotatedKey)]
    assert len(rotated) == 1 and not rotated[0].cut_short
    assert len(refused) == 15
    assert all(
        isinstance(r, PreconditionFailed) and r.reason == "KEY_RECENTLY_ROTATED" for r in refused
    ), refused
    harness.clock.advance(PAST_TTL)
    assert _outcome(harness, rotated[0].api_key, active) == "verified"
    # The key it replaced keeps its hour: no refused rotation cut it short.
    assert _outcome(harness, bank.api_key, active) == "verified"
    shown = harness.run(parties.show_party(uow, bank.party.id))
    assert shown.previous_key_expires_at == rotated[0].old_key_expires_at


def test_forced_rotations_at_the_same_moment_each_tell_whether_they_stopped_an_earlier_key(
    harness: ServerHarness, bank: Party, active: Demographics
) -> None:
    """Operators forcing rotations of one party's key at once: each rotation
    after the first ends an earlier one's overlap, and must say so (on
    PostgreSQL a rotation that read the party before another committed said
    nothing, and the key the party still used stopped unannounced)."""
    uow, ctx = harness.runtime.uow, harness.runtime.context

    async def at_once() -> list[parties.RotatedKey]:
        rotations = (
            parties.rotate_party_key(uow, ctx, bank.party.id, timedelta(hours=1), force=True)
            for _ in range(16)
        )
        return list(await asyncio.gather(*rotations))

    rotated = harness.run(at_once())
    harness.clock.advance(PAST_TTL)
    assert sum(r.cut_short for r in rotated) == 15
    working = [r.api_key for r in rotated if _outcome(harness, r.api_key, active) == "verified"]
    assert len(working) == 2  # the current key and the one it replaced, for its overlap
    assert _outcome(harness, bank.api_key, active) == "UNAUTHENTICATED API_KEY_INVALID"
