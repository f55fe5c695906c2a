"""Verify by the citizen's approval: the party collects the outcome once,
waits for a pending decision (woken at once by a decision in this process),
and is told precisely why not when the citizen declined, mistyped the code
or let the request expire. A party waits in so many calls at once, each
paying one token of its rate limit when it begins."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace

import pytest

from eid_client.receipts import verify_receipt
from eid_service.domain.account import AccountState
from eid_service.domain.approval import APPROVAL_TTL, ApprovalState
from eid_service.domain.errors import (
    DomainError,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    TooManyAttempts,
    Unavailable,
)
from eid_service.domain.party import RelyingParty, VerifyMode
from eid_service.domain.party_limits import party_bucket
from eid_service.domain.share import Attribute
from eid_service.use_cases import verify_approval
from eid_service.use_cases.approval_waits import ApprovalWaits
from eid_service.use_cases.verify_approval import COLLECT_GRACE
from tests.unit.approval_kit import collect, decide, session_of, start, wrong
from tests.unit.use_case_kit import LAN, STRANGER, World, as_seen, refused

A = Attribute


async def test_an_approval_verifies_once_with_a_receipt(world: World) -> None:
    await world.active(LAN)
    bank = world.party("Bank", frozenset({A.FULL_NAME, A.BIRTH_DATE, A.PERSONAL_ID}))
    started = await start(world, bank, LAN, requested=frozenset({A.FULL_NAME, A.BIRTH_DATE}))
    phone = await session_of(world, LAN)

    early = await refused(collect(world, bank, started.approval_id))
    assert isinstance(early, Unavailable) and early.reason == "APPROVAL_PENDING"
    await decide(world, phone, started.approval_id, started.code)

    v = await collect(world, bank, started.approval_id, request_id="collect-1")
    assert (v.verified, v.method) == (True, VerifyMode.APPROVAL)
    assert v.released == {A.FULL_NAME: "Nguyễn Thị Lan", A.BIRTH_DATE: "1990-05-17"}
    claims = verify_receipt(v.receipt, (await world.keys()).verification_keys, audience=bank.id)
    assert (claims.mode, claims.subject, claims.attributes) == (
        "approval",
        v.subject,
        ("birth_date", "full_name"),
    )

    replayed = await collect(world, bank, started.approval_id, request_id="collect-1")
    assert replayed == v  # a lost answer is not lost
    used = await refused(collect(world, bank, started.approval_id, request_id="collect-2"))
    assert isinstance(used, PreconditionFailed) and used.reason == "APPROVAL_ALREADY_USED"
    assert world.history(LAN)[-1] == ("verify.approval", "verified", bank.id)


async def test_the_party_may_narrow_what_it_collects_but_not_widen_it(world: World) -> None:
    await world.active(LAN)
    bank = world.party("Bank", frozenset({A.FULL_NAME, A.PERSONAL_ID}))
    started = await start(world, bank, LAN, requested=frozenset({A.FULL_NAME}))
    await decide(world, await session_of(world, LAN), started.approval_id, started.code)

    beyond = await refused(
        collect(world, bank, started.approval_id, requested=frozenset({A.BIRTH_DATE}))
    )
    assert beyond.reason == "SCOPE_NOT_ALLOWED"
    # Asking for the ID number at collection releases nothing the citizen did not approve.
    v = await collect(world, bank, started.approval_id, requested=frozenset({A.PERSONAL_ID}))
    assert v.verified and v.released == {}


@pytest.mark.parametrize(
    ("how", "kind", "reason", "outcome"),
    [
        ("decline", PermissionDenied, "APPROVAL_DECLINED", "declined"),
        ("wrong codes", PermissionDenied, "APPROVAL_WRONG_CODE", "voided"),
        ("expire", PreconditionFailed, "APPROVAL_EXPIRED", "expired"),
    ],
)
async def test_why_not_verified(
    world: World, how: str, kind: type[DomainError], reason: str, outcome: str
) -> None:
    await world.active(LAN)
    bank = world.party()
    started = await start(world, bank, LAN)
    phone = await session_of(world, LAN)
    if how == "decline":
        await decide(world, phone, started.approval_id, approve=False)
    elif how == "wrong codes":
        for _ in range(3):
            await refused(decide(world, phone, started.approval_id, wrong(started.code)))
    else:
        world.clock.advance(APPROVAL_TTL)

    first = await refused(collect(world, bank, started.approval_id, wait=30, request_id="v-1"))
    assert isinstance(first, kind) and first.reason == reason  # decided: no wait
    again = await refused(collect(world, bank, started.approval_id))
    assert as_seen(again) == as_seen(first)
    # Audited once, as a failed verification in the citizen's access history.
    [event] = [e for e in world.audit_events(LAN) if e.action == "verify.approval"]
    assert (event.outcome, event.party_id, event.reason, event.request_id) == (
        outcome,
        bank.id,
        reason,
        "v-1",
    )


async def test_a_request_for_nobody_expires_like_any_other(world: World) -> None:
    bank = world.party()
    started = await start(world, bank, STRANGER)
    pending = await refused(collect(world, bank, started.approval_id))
    assert pending.reason == "APPROVAL_PENDING"
    world.clock.advance(APPROVAL_TTL)
    assert (await refused(collect(world, bank, started.approval_id))).reason == "APPROVAL_EXPIRED"


async def test_an_approval_is_collected_within_a_grace_after_expiry_not_later(
    world: World,
) -> None:
    await world.active(LAN)
    bank = world.party()
    phone = await session_of(world, LAN)
    on_time = await start(world, bank, LAN)
    await decide(world, phone, on_time.approval_id, on_time.code)
    world.clock.advance(APPROVAL_TTL)
    assert (await collect(world, bank, on_time.approval_id)).verified

    world.clock.advance(APPROVAL_TTL)  # a fresh window for the per-citizen limit
    too_late = await start(world, bank, LAN)
    await decide(world, phone, too_late.approval_id, too_late.code)
    world.clock.advance(APPROVAL_TTL + COLLECT_GRACE)
    late = await refused(collect(world, bank, too_late.approval_id))
    assert late.reason == "APPROVAL_EXPIRED"


async def test_another_partys_request_is_not_found(world: World) -> None:
    await world.active(LAN)
    bank, telco = world.party("Bank"), world.party("Telco")
    started = await start(world, bank, LAN)
    await decide(world, await session_of(world, LAN), started.approval_id, started.code)

    theirs = await refused(collect(world, telco, started.approval_id))
    unknown = await refused(collect(world, telco, "apr_" + "f" * 24))
    assert isinstance(theirs, NotFound) and as_seen(theirs) == as_seen(unknown)
    assert (await collect(world, bank, started.approval_id)).verified  # still the bank's


async def test_an_account_locked_after_approving_is_told_locked(world: World) -> None:
    await world.active(LAN)
    bank = world.party()
    started = await start(world, bank, LAN)
    await decide(world, await session_of(world, LAN), started.approval_id, started.code)
    world.set_state(LAN, AccountState.LOCKED)
    locked = await refused(collect(world, bank, started.approval_id))
    assert locked.reason == "ACCOUNT_LOCKED"


async def test_a_waiting_verify_wakes_when_the_citizen_decides(world: World) -> None:
    await world.active(LAN)
    bank = world.party()
    started = await start(world, bank, LAN)
    phone = await session_of(world, LAN)

    waiting = asyncio.create_task(collect(world, bank, started.approval_id, wait=60))
    await asyncio.sleep(0.01)
    assert not waiting.done() and len(world.ctx.approval_wakeups) == 1
    await decide(world, phone, started.approval_id, started.code)
    v = await asyncio.wait_for(waiting, 10)
    assert v.verified and len(world.ctx.approval_wakeups) == 0


async def test_a_cancelled_wait_leaves_nothing_behind(world: World) -> None:
    await world.active(LAN)
    bank = world.party()
    started = await start(world, bank, LAN)

    waiting = asyncio.create_task(collect(world, bank, started.approval_id, wait=60))
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert len(world.ctx.approval_wakeups) == 0
    request = world.uow.state.approvals[started.approval_id][0]
    assert (request.status(world.clock()), request.collected_at) == (ApprovalState.PENDING, None)
    await decide(world, await session_of(world, LAN), started.approval_id, started.code)
    assert (await collect(world, bank, started.approval_id)).verified


async def test_a_wait_ends_pending_when_its_time_is_up(world: World) -> None:
    await world.active(LAN)
    bank = world.party()
    started = await start(world, bank, LAN)
    before = world.uow.reads
    pending = await refused(collect(world, bank, started.approval_id, wait=0.3))
    assert pending.reason == "APPROVAL_PENDING"
    assert pending.metadata["expire_time"] == started.expires_at.isoformat()
    assert world.uow.reads - before >= 2  # it looked again before giving up
    assert len(world.ctx.approval_wakeups) == 0


async def test_a_draining_server_ends_waits_pending_before_its_grace_runs_out(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a clock of the wait's own, moved only by its naps (a noisy machine
    stretches real ones): a drain begun during a nap ends the wait at the
    drain's time, not at the wait's 60 s, and not at once."""
    await world.active(LAN)
    bank = world.party()
    started = await start(world, bank, LAN)
    clock = SimpleNamespace(now=1000.0)
    monkeypatch.setattr(verify_approval, "time", SimpleNamespace(monotonic=lambda: clock.now))
    napping, drained = asyncio.Event(), asyncio.Event()

    async def nap(key: str, seconds: float) -> bool:
        napping.set()
        await drained.wait()
        clock.now += seconds
        return False  # nobody decided

    monkeypatch.setattr(world.ctx.approval_wakeups, "nap", nap)
    waiting = asyncio.create_task(collect(world, bank, started.approval_id, wait=60))
    await napping.wait()
    end_by = clock.now + 0.3
    world.ctx.approval_wakeups.drain(end_by)
    drained.set()
    pending = await refused(waiting)
    assert pending.reason == "APPROVAL_PENDING"
    assert clock.now == pytest.approx(end_by)


async def test_sixteen_duplicate_decisions_have_one_outcome(world: World) -> None:
    await world.active(LAN)
    bank = world.party()
    started = await start(world, bank, LAN)
    phone = await session_of(world, LAN)

    async def approve() -> str:
        try:
            await decide(world, phone, started.approval_id, started.code)
        except DomainError as e:
            return e.reason
        return "ok"

    outcomes = await asyncio.gather(*(approve() for _ in range(16)))
    assert sorted(set(outcomes)) == ["APPROVAL_ALREADY_DECIDED", "ok"] and outcomes.count("ok") == 1
    assert [h for h in world.history(LAN) if h[0] == "approval.approved"] == [
        ("approval.approved", "ok", bank.id)
    ]


async def test_a_wait_that_sees_the_request_expire_is_told_expired(world: World) -> None:
    await world.active(LAN)
    bank = world.party()
    started = await start(world, bank, LAN)
    waiting = asyncio.create_task(collect(world, bank, started.approval_id, wait=60))
    await asyncio.sleep(0.01)
    world.clock.advance(APPROVAL_TTL)
    expired = await asyncio.wait_for(asyncio.gather(waiting, return_exceptions=True), 10)
    assert isinstance(expired[0], PreconditionFailed) and expired[0].reason == "APPROVAL_EXPIRED"


async def test_a_party_waits_in_so_many_calls_at_once_each_giving_its_place_back(
    world: World,
) -> None:
    world.ctx = replace(world.ctx, approval_waits=ApprovalWaits(max_concurrent_rpcs=20))
    bank, telco = world.party("Bank"), world.party("Telco")
    first, second = await start(world, bank), await start(world, bank)
    theirs = await start(world, telco)

    def wait(party: RelyingParty, approval_id: str, seconds: float = 60) -> asyncio.Task[object]:
        return asyncio.create_task(collect(world, party, approval_id, wait=seconds))

    held = [wait(bank, first.approval_id), wait(bank, second.approval_id)]
    await asyncio.sleep(0.01)
    # A tenth of 20 calls at once: the bank's third wait is refused, on
    # either request, at once; a poll that does not wait is still answered.
    for approval_id in (first.approval_id, second.approval_id):
        over = await refused(collect(world, bank, approval_id, wait=60))
        assert isinstance(over, TooManyAttempts) and over.reason == "APPROVAL_WAITS_EXCEEDED"
        assert over.metadata["max_waits"] == "2"
    assert (await refused(collect(world, bank, first.approval_id))).reason == "APPROVAL_PENDING"
    others = wait(telco, theirs.approval_id)  # another party's waits are its own
    await asyncio.sleep(0.01)
    assert not others.done()

    # Cancelled, or cut by its deadline: each wait gives its place back.
    held[0].cancel()
    with pytest.raises(asyncio.CancelledError):
        await held[0]
    held[0] = wait(bank, first.approval_id)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(held[1], 0.2)
    held[1] = wait(bank, second.approval_id, seconds=0.2)  # out of time, it answers pending
    assert (await refused(held[1])).reason == "APPROVAL_PENDING"
    held[1] = wait(bank, second.approval_id)
    await asyncio.sleep(0.01)
    assert not any(w.done() for w in held)

    for w in (*held, others):
        w.cancel()
    await asyncio.gather(*held, others, return_exceptions=True)
    assert len(world.ctx.approval_waits) == 0


def _party_tokens(world: World, party: RelyingParty) -> float:
    tokens: float = world.uow.state.rate_buckets[party_bucket(party).key][0]
    return tokens


async def test_a_wait_takes_the_call_s_one_token_when_it_begins(world: World) -> None:
    await world.active(LAN)
    bank = world.party(rate=3, citizen_rate=3)  # the fake clock stands still: no refill
    started = await start(world, bank, LAN)
    assert _party_tokens(world, bank) == 2

    assert (await refused(collect(world, bank, started.approval_id))).reason == "APPROVAL_PENDING"
    assert _party_tokens(world, bank) == 2  # answered at once: no token
    out_of_time = await refused(collect(world, bank, started.approval_id, wait=0.2))
    assert out_of_time.reason == "APPROVAL_PENDING"
    assert _party_tokens(world, bank) == 1

    waiting = asyncio.create_task(collect(world, bank, started.approval_id, wait=60))
    await asyncio.sleep(0.01)
    assert _party_tokens(world, bank) == 0
    await decide(world, await session_of(world, LAN), started.approval_id, started.code)
    assert (await asyncio.wait_for(waiting, 10)).verified  # collected on the wait's token

    world.clock.advance(timedelta(seconds=20))  # one token more, for this start
    another = await start(world, bank, LAN)
    over = await refused(collect(world, bank, another.approval_id, wait=60))
    assert isinstance(over, TooManyAttempts) and over.reason == "PARTY_RATE_LIMITED"
    assert len(world.ctx.approval_waits) == 0  # refused: it does not wait
