"""The transactional outbox on a real database: each message goes to each of
its senders once, failures are retried with backoff and die after the last
attempt, several workers never send one delivery twice, and nothing of the
contents is kept once delivered."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import TypeVar

import pytest

from eid_service.domain.notices import Notice, NoticeKind
from eid_service.notify.dispatcher import OutboxDispatcher
from eid_service.notify.senders import ALL_CHANNELS, Route
from eid_service.use_cases.ports import (
    ClaimedDelivery,
    DueDelivery,
    Repositories,
    RetryOutcome,
    UnitOfWork,
)
from eid_service.use_cases.purge import purge_expired
from tests.integration.harness import RecordingSender
from tests.integration.outbox_kit import FAST, LATER, FlakySender, open_store, store

T = TypeVar("T")


async def test_a_failed_delivery_is_retried_after_a_backoff(database_url: str) -> None:
    with store(database_url) as s:
        sender = FlakySender(failures=1)
        first = OutboxDispatcher(s.uow, [sender], s.clock, FAST)
        second = OutboxDispatcher(s.uow, [sender], s.clock, FAST)
        message_id = await s.add()

        assert await first.deliver_pending() == 0  # the gateway fails
        assert await second.deliver_pending() == 0  # waiting out its backoff
        assert s.deliveries(message_id) == {"flakysender": ("pending", 1)}
        assert s.contents(message_id) == (True, True)

        s.clock.advance(LATER)
        assert await second.deliver_pending() == 1
        assert await first.deliver_pending() == 0  # nothing left
        assert [m.id for m in sender.messages] == [message_id]
        assert "123456" in sender.messages[0].body
        assert s.deliveries(message_id) == {"flakysender": ("sent", 2)}
        # The code is scrubbed once delivered.
        assert s.contents(message_id) == (False, False)
        ((error,),) = s.rows("SELECT last_error FROM outbox_deliveries")
        assert error is None


async def test_one_failing_sender_never_makes_another_resend(database_url: str) -> None:
    with store(database_url) as s:
        good, bad = RecordingSender(), FlakySender(failures=2)
        routes = [Route("good", ALL_CHANNELS, good), Route("bad", ALL_CHANNELS, bad)]
        worker = OutboxDispatcher(s.uow, routes, s.clock, FAST)
        message_id = await s.add()
        for _ in range(4):
            await worker.deliver_pending()
            s.clock.advance(LATER)

        assert [m.id for m in good.messages] == [message_id]
        assert [m.id for m in bad.messages] == [message_id]
        assert bad.calls == 3
        assert s.deliveries(message_id) == {"good": ("sent", 1), "bad": ("sent", 3)}
        assert s.contents(message_id) == (False, False)


async def test_contents_stay_until_every_sender_has_delivered(database_url: str) -> None:
    with store(database_url) as s:
        good, bad = RecordingSender(), FlakySender(failures=1)
        routes = [Route("good", ALL_CHANNELS, good), Route("bad", ALL_CHANNELS, bad)]
        worker = OutboxDispatcher(s.uow, routes, s.clock, FAST)
        message_id = await s.add()
        await worker.deliver_pending()
        assert s.contents(message_id) == (True, True)  # "bad" still needs them
        s.clock.advance(LATER)
        await worker.deliver_pending()
        assert s.contents(message_id) == (False, False)


async def test_senders_are_routed_by_channel(database_url: str) -> None:
    with store(database_url) as s:
        phone, mail, both = RecordingSender(), RecordingSender(), RecordingSender()
        routes = [
            Route("sms-only", frozenset({"sms"}), phone),
            Route("email-only", frozenset({"email"}), mail),
            Route("both", ALL_CHANNELS, both),
        ]
        worker = OutboxDispatcher(s.uow, routes, s.clock, FAST)
        sms_id = await s.add("sms")
        email_id = await s.add("email")
        assert await worker.deliver_pending() == 4
        assert [m.id for m in phone.messages] == [sms_id]
        assert [m.id for m in mail.messages] == [email_id]
        assert sorted(m.id for m in both.messages) == sorted([sms_id, email_id])


async def test_a_message_no_sender_takes_waits_unsent(database_url: str) -> None:
    with store(database_url) as s:
        worker = OutboxDispatcher(
            s.uow, [Route("sms-only", frozenset({"sms"}), RecordingSender())], s.clock, FAST
        )
        email_id = await s.add("email")
        assert await worker.deliver_pending() == 0
        assert s.deliveries(email_id) == {}
        assert s.contents(email_id) == (True, True)


async def test_purge_erases_what_no_sender_took_and_forgets_what_is_settled(
    database_url: str,
) -> None:
    """A code for a channel with no sender is erased after a day (a sender
    configured later must not send a stale code); settled messages and their
    deliveries are forgotten after a week."""
    with store(database_url) as s:
        worker = OutboxDispatcher(
            s.uow, [Route("sms-only", frozenset({"sms"}), RecordingSender())], s.clock, FAST
        )
        email_id = await s.add("email")
        await s.add("sms")
        assert await worker.deliver_pending() == 1
        s.clock.advance(timedelta(days=1, seconds=1))
        first = await purge_expired(s.uow, s.clock())
        assert (first.messages_erased, first.messages) == (1, 0)
        assert s.contents(email_id) == (False, False)
        # Settled: a sender added now does not pick it up.
        assert await s.uow.read(lambda r: r.outbox.unrouted_ids("email", 10)) == []
        s.clock.advance(timedelta(days=7))
        second = await purge_expired(s.uow, s.clock())
        assert (second.messages_erased, second.messages) == (0, 2)
        assert s.rows("SELECT id FROM outbox") == []
        assert s.rows("SELECT message_id FROM outbox_deliveries") == []


async def test_a_permanent_failure_is_dead_at_once(database_url: str) -> None:
    with store(database_url) as s:
        sender = FlakySender(failures=-1, permanent=True)
        worker = OutboxDispatcher(s.uow, [sender], s.clock, FAST)
        message_id = await s.add(kind=NoticeKind.ACCOUNT_LOCKED)
        await worker.deliver_pending()
        s.clock.advance(LATER)
        await worker.deliver_pending()
        assert sender.calls == 1
        assert s.deliveries(message_id) == {"flakysender": ("dead", 1)}
        ((error,),) = s.rows("SELECT last_error FROM outbox_deliveries")
        assert error == "Undeliverable: HTTP 400"


async def test_dead_letters_keep_notices_but_not_codes_and_retry(database_url: str) -> None:
    with store(database_url) as s:
        sender = FlakySender(failures=-1)
        worker = OutboxDispatcher(s.uow, [sender], s.clock, FAST)
        code_id = await s.add(kind=NoticeKind.ACTIVATION_CODE)
        notice_id = await s.add(kind=NoticeKind.ACCOUNT_LOCKED)
        for _ in range(FAST.max_attempts + 1):
            await worker.deliver_pending()
            s.clock.advance(LATER)
        assert sender.calls == 2 * FAST.max_attempts
        dead = await s.uow.read(lambda r: r.outbox.dead_letters(10))
        assert {(d.message_id, d.attempts, d.retriable) for d in dead} == {
            (code_id, 3, False),
            (notice_id, 3, True),
        }
        # A dead one-time code is erased; a notice keeps its contents for a retry.
        assert s.contents(code_id) == (False, False)
        assert s.contents(notice_id) == (True, True)

        sender.failures = 0  # the gateway is back
        now = s.clock()
        outcomes = await s.uow.atomically(
            lambda r: [r.outbox.retry_dead(i, now) for i in (code_id, notice_id, "msg_none")]
        )
        assert outcomes == [RetryOutcome.ERASED, RetryOutcome.RETRIED, RetryOutcome.NOT_DEAD]
        assert await worker.deliver_pending() == 1
        assert [m.id for m in sender.messages] == [notice_id]
        assert s.contents(notice_id) == (False, False)
        assert [d.message_id for d in await s.uow.read(lambda r: r.outbox.dead_letters(10))] == [
            code_id
        ]


async def test_due_deliveries_leave_out_busy_parties(database_url: str) -> None:
    """What a dispatcher reads when some parties have as many deliveries in
    flight as they may: everyone else's, citizens' messages too, longest due
    first, each with its party."""
    with store(database_url) as s:
        notice = Notice(NoticeKind.STATUS_EVENT, "account.locked", "{}")

        async def event(party: str) -> str:
            now = s.clock()
            return await s.uow.atomically(
                lambda r: r.outbox.add("party_webhook", party, notice, now, party_id=party)
            )

        ids = [await event(p) for p in ("rp_slow", "rp_bank", "rp_slow", "rp_telco")]
        ids.append(await s.add())
        start = s.clock()
        # Due one after the other, in that order.
        await s.uow.atomically(
            lambda r: [
                r.outbox.route(i, ["hook"], start + timedelta(seconds=n)) for n, i in enumerate(ids)
            ]
        )
        now = start + timedelta(seconds=len(ids))
        slow, bank, slow_again, telco, sms = (
            DueDelivery(i, p)
            for i, p in zip(ids, ("rp_slow", "rp_bank", "rp_slow", "rp_telco", None), strict=True)
        )

        async def due(*busy: str) -> list[DueDelivery]:
            return await s.uow.read(lambda r: r.outbox.due("hook", now, 3, 10, busy))

        assert await due() == [slow, bank, slow_again, telco, sms]
        assert await due("rp_slow") == [bank, telco, sms]
        assert await due("rp_telco", "rp_slow") == [bank, sms]


async def test_a_crash_before_marking_sent_resends_under_the_same_id(database_url: str) -> None:
    with store(database_url) as s:
        sender = RecordingSender()
        worker = OutboxDispatcher(s.uow, [sender], s.clock, FAST)
        message_id = await s.add()
        now = s.clock()
        # A worker routes, claims and sends, then dies before recording it.
        await s.uow.atomically(lambda r: r.outbox.route(message_id, ["recordingsender"], now))
        claimed = await s.uow.atomically(
            lambda r: r.outbox.claim(message_id, "recordingsender", now, now + FAST.claim_for, 3)
        )
        assert claimed is not None
        await sender.send(claimed.message)
        assert await worker.deliver_pending() == 0  # still claimed
        s.clock.advance(FAST.claim_for)
        assert await worker.deliver_pending() == 1  # the claim lapsed
        assert [m.id for m in sender.messages] == [message_id, message_id]


class UnheardClaim:
    """The store as a worker sees it when the database goes away just as a
    claim commits: the claim is kept, the worker hears an error."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self.armed = False

    async def read(self, work: Callable[[Repositories], T]) -> T:
        return await self._uow.read(work)

    async def atomically(self, work: Callable[[Repositories], T], *, long: bool = False) -> T:
        done = await self._uow.atomically(work, long=long)
        # The dispatcher's claims are its only short writes that return a delivery.
        if self.armed and isinstance(done, ClaimedDelivery):
            self.armed = False
            raise ConnectionError("the database went away")
        return done


async def test_a_claim_whose_commit_went_unheard_is_given_back_at_the_next_pass(
    database_url: str,
) -> None:
    with store(database_url) as s:
        sender = RecordingSender()
        unheard = UnheardClaim(s.uow)
        worker = OutboxDispatcher(unheard, [sender], s.clock, FAST)
        message_id = await s.add()
        unheard.armed = True
        with pytest.raises(ConnectionError):
            await worker.deliver_pending()
        assert s.deliveries(message_id) == {"recordingsender": ("pending", 1)}  # claimed

        # Only that very claim is given back: not one made at another moment.
        now = s.clock()
        other = await s.uow.atomically(
            lambda r: r.outbox.give_back(message_id, "recordingsender", now, now + LATER)
        )
        assert other is False
        # The next pass, at the same moment: sent now, not once the claim lapses,
        # and the attempt that never sent is not counted.
        assert await worker.deliver_pending() == 1
        assert [m.id for m in sender.messages] == [message_id]
        assert s.deliveries(message_id) == {"recordingsender": ("sent", 1)}


async def test_a_delivery_out_of_attempts_whose_claim_lapsed_is_dead(database_url: str) -> None:
    with store(database_url) as s:
        worker = OutboxDispatcher(
            s.uow, [RecordingSender()], s.clock, replace(FAST, max_attempts=1)
        )
        message_id = await s.add(kind=NoticeKind.ACCOUNT_UNLOCKED)
        now = s.clock()
        await s.uow.atomically(lambda r: r.outbox.route(message_id, ["recordingsender"], now))
        claimed = await s.uow.atomically(
            lambda r: r.outbox.claim(message_id, "recordingsender", now, now + FAST.claim_for, 1)
        )
        assert claimed is not None
        s.clock.advance(LATER)
        assert await worker.deliver_pending() == 0
        ((state, error),) = s.rows("SELECT state, last_error FROM outbox_deliveries")
        assert (state, error) == ("dead", "ClaimLapsed")


async def test_two_workers_send_each_message_once_per_sender(database_url: str) -> None:
    with store(database_url) as s:
        other_process = open_store(database_url, s.ring)
        try:
            sms, file = RecordingSender(), RecordingSender()
            routes = [Route("sms", ALL_CHANNELS, sms), Route("file", ALL_CHANNELS, file)]
            workers = [
                OutboxDispatcher(uow, routes, s.clock, FAST)
                for uow in (s.uow, other_process, s.uow, other_process)
            ]
            ids = {await s.add() for _ in range(40)}
            for _ in range(3):
                await asyncio.gather(*(w.deliver_pending() for w in workers))
            assert sorted(m.id for m in sms.messages) == sorted(ids)
            assert sorted(m.id for m in file.messages) == sorted(ids)
            assert s.rows("SELECT COUNT(*) FROM outbox WHERE body_enc IS NOT NULL") == [(0,)]
        finally:
            other_process.close()
