"""Purging forgets what has expired and nothing that still works."""

from __future__ import annotations

from datetime import timedelta

import pytest

from eid_service.domain.share import Attribute
from eid_service.use_cases import purge as purge_module
from eid_service.use_cases.purge import Purged, purge_expired
from eid_service.use_cases.sessions import REFRESH_TTL
from tests.unit.use_case_kit import LAN, PASSWORD, WRONG_PASSWORD, World, refused

NOTHING = Purged(0, 0, 0, 0, 0, 0, 0, 0, 0)


async def test_purging_right_away_forgets_nothing(world: World) -> None:
    await world.active(LAN)
    bank = world.party()
    await world.shared_by(LAN, [Attribute.FULL_NAME])
    await world.verify(bank, LAN.personal_id, WRONG_PASSWORD, request_id="v-1")

    assert await purge_expired(world.uow, world.clock()) == NOTHING


async def test_a_month_later_the_expired_things_are_forgotten_and_the_rest_kept(
    world: World,
) -> None:
    await world.active(LAN)
    bank = world.party()
    old_session = (await world.sign_in(LAN)).tokens.access_token
    await world.share(old_session, [Attribute.FULL_NAME])
    await world.verify(bank, LAN.personal_id, WRONG_PASSWORD, request_id="v-1")

    # Past the refresh token's 30 days, so the first session is gone too.
    world.clock.advance(REFRESH_TTL + timedelta(hours=1))
    session = (await world.sign_in(LAN)).tokens.access_token
    live_share = await world.share(session, [Attribute.FULL_NAME])
    writes = world.uow.writes

    purged = await purge_expired(world.uow, world.clock())

    assert purged == Purged(
        sessions=1,
        shares=1,
        idempotency_records=1,
        party_failures=1,
        credential_attempts=1,
        # Register's two counters: its source, and the phone it sent to.
        rate_counters=2,
        # The activation code, long expired; its SMS, which no sender took
        # here (no dispatcher runs): erased after a day, forgotten after a week.
        one_time_codes=1,
        messages_erased=1,
        messages=1,
        # The verification's token buckets (the party's, the party-citizen's).
        rate_buckets=2,
    )
    # In batches, one short transaction per kind here.
    assert world.uow.writes == writes + len(NOTHING.__dataclass_fields__)
    assert list(world.uow.state.shares) == [live_share.grant.id]
    assert (await refused(world.share(old_session, [Attribute.FULL_NAME]))).reason == (
        "SESSION_INVALID"
    )
    assert (await world.share(session, [Attribute.BIRTH_DATE])).grant.account_id
    assert (await world.redeem(bank, live_share.token)).verified
    # The request id's first answer is gone: it names a new request now.
    assert (await world.verify(bank, LAN.personal_id, PASSWORD, request_id="v-1")).verified
    assert await purge_expired(world.uow, world.clock()) == NOTHING


async def test_an_expired_share_is_kept_a_day_to_say_it_expired(world: World) -> None:
    await world.active(LAN)
    await world.shared_by(LAN, [Attribute.FULL_NAME])
    world.clock.advance(timedelta(hours=24, minutes=4))
    assert (await purge_expired(world.uow, world.clock())).shares == 0
    world.clock.advance(timedelta(minutes=1))
    assert (await purge_expired(world.uow, world.clock())).shares == 1


async def test_a_backlog_is_purged_in_batches(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many expired rows go in several short transactions, not one long one."""
    monkeypatch.setattr(purge_module, "PURGE_BATCH", 2)
    bank = world.party()
    for i in range(5):
        await world.verify(bank, LAN.personal_id, WRONG_PASSWORD, request_id=f"v-{i}")
    writes = world.uow.writes
    purged = await purge_expired(world.uow, world.clock() + timedelta(days=2))
    assert purged.idempotency_records == 5
    # 3 transactions for the 5 records (2 + 2 + 1), one each for the (empty)
    # sessions, shares, rate counters, codes, unsent and erased messages, the
    # party's failure count and approval requests, and 2 each for the 2
    # attempt counters and the 2 token buckets (a full batch is followed by
    # one more look).
    assert world.uow.writes - writes == 3 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 2 + 1 + 2
