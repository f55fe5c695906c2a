"""The party webhook sender (over an httpx mock transport): what it POSTs,
which answers are retried, which are dead at once, what happens with no
webhook or a suspended party; and the route's own, longer retry schedule."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from eid_service.domain.notices import Notice, NoticeKind
from eid_service.notify.dispatcher import OutboxDispatcher
from eid_service.notify.failures import DeliveryFailed, Undeliverable
from eid_service.notify.party_webhook import MAX_ATTEMPTS, PartyWebhookSender, party_delivery
from eid_service.notify.senders import PARTY_WEBHOOK, Route
from eid_service.notify.settings import DeliverySettings
from eid_service.use_cases.ports import OutgoingMessage
from eid_service.use_cases.status_events import Held, PreparedEvent
from tests.unit.fake_store import FakeUnitOfWork

NOW = 1_764_000_000.0
EVENT = PreparedEvent("evt_1", "https://bank.example/hook?t=1", b'{"id":"evt_1"}', "h..s")
MESSAGE = OutgoingMessage("msg_1", PARTY_WEBHOOK, NoticeKind.STATUS_EVENT, "rp_1", "t", "{}")


def _sender(
    answer: int | Exception, prepared: PreparedEvent | Held = EVENT
) -> tuple[PartyWebhookSender, list[httpx.Request], list[datetime]]:
    seen: list[httpx.Request] = []
    signed: list[datetime] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer)

    async def prepare(message: OutgoingMessage, signed_at: datetime) -> PreparedEvent | Held:
        signed.append(signed_at)
        return prepared

    sender = PartyWebhookSender(prepare, clock=lambda: NOW, transport=httpx.MockTransport(handle))
    return sender, seen, signed


async def test_the_event_is_posted_with_its_id_and_signature() -> None:
    sender, seen, signed = _sender(204)
    await sender.send(MESSAGE)
    await sender.aclose()
    (request,) = seen
    assert (request.method, str(request.url), request.content) == (
        "POST",
        EVENT.url,
        EVENT.body,
    )
    assert request.headers["idempotency-key"] == "evt_1"
    assert request.headers["x-eid-signature"] == "h..s"
    assert request.headers["content-type"] == "application/json"
    assert signed == [datetime.fromtimestamp(NOW, UTC)]


@pytest.mark.parametrize(
    ("answer", "kind", "detail"),
    [
        (500, DeliveryFailed, "HTTP 500"),
        (503, DeliveryFailed, "HTTP 503"),
        (429, DeliveryFailed, "HTTP 429"),
        (408, DeliveryFailed, "HTTP 408"),
        (httpx.ConnectError("refused"), DeliveryFailed, "ConnectError"),
        (httpx.ReadTimeout("slow"), DeliveryFailed, "timeout"),
        (400, Undeliverable, "HTTP 400"),
        (404, Undeliverable, "HTTP 404"),
        (410, Undeliverable, "HTTP 410"),
        (302, Undeliverable, "HTTP 302"),  # redirects are not followed
        # A host httpx cannot use (an octal quad): once, not 18 times with a traceback.
        (httpx.InvalidURL("bad host"), Undeliverable, "invalid URL"),
    ],
)
async def test_what_is_retried_and_what_is_dead_at_once(
    answer: int | Exception, kind: type[DeliveryFailed], detail: str
) -> None:
    sender, _, _ = _sender(answer)
    with pytest.raises(DeliveryFailed) as failed:
        await sender.send(MESSAGE)
    await sender.aclose()
    assert type(failed.value) is kind and failed.value.detail == detail


async def _prepare(message: OutgoingMessage, signed_at: datetime) -> PreparedEvent:
    return EVENT


async def test_an_answer_that_never_comes_is_a_timeout() -> None:
    """httpx bounds each read, not the whole answer: a receiver sending its
    answer a byte at a time held each delivery for the dispatcher's 30 s.
    (A mock transport has no reads to bound: only the whole-answer bound
    can end this one.)"""

    async def never(_: httpx.Request) -> httpx.Response:
        await asyncio.sleep(3600)
        return httpx.Response(200)

    sender = PartyWebhookSender(
        _prepare, transport=httpx.MockTransport(never), timeout_seconds=0.05
    )
    async with asyncio.timeout(10):  # a hang guard: before, it never ended
        with pytest.raises(DeliveryFailed) as failed:
            await sender.send(MESSAGE)
    await sender.aclose()
    assert type(failed.value) is DeliveryFailed and failed.value.detail == "timeout"


async def test_an_answers_body_that_never_ends_is_not_waited_for() -> None:
    """Only the status counts: the body is never read (it could be endless,
    or gigabytes)."""

    async def dribble() -> AsyncIterator[bytes]:
        while True:
            yield b"a"
            await asyncio.sleep(0.001)

    transport = httpx.MockTransport(lambda _: httpx.Response(200, content=dribble()))
    sender = PartyWebhookSender(_prepare, transport=transport, timeout_seconds=5)
    async with asyncio.timeout(10):  # a hang guard
        await sender.send(MESSAGE)
    await sender.aclose()


async def test_no_webhook_is_dead_and_a_suspended_party_waits() -> None:
    for held, kind in ((Held.NO_WEBHOOK, Undeliverable), (Held.PARTY_SUSPENDED, DeliveryFailed)):
        sender, seen, _ = _sender(200, held)
        with pytest.raises(DeliveryFailed) as failed:
            await sender.send(MESSAGE)
        assert type(failed.value) is kind and failed.value.detail == held.value
        assert seen == []


class _Down:
    """A webhook that never answers 2xx."""

    calls = 0

    async def send(self, message: OutgoingMessage) -> None:
        self.calls += 1
        raise DeliveryFailed("HTTP 503")


async def test_the_party_route_retries_on_its_own_longer_schedule() -> None:
    uow = FakeUnitOfWork()
    now = [datetime(2026, 11, 25, tzinfo=UTC)]
    outbox = DeliverySettings(max_attempts=3, retry_base_seconds=5, retry_max_seconds=60)
    sms, hook = _Down(), _Down()
    routes = [
        Route("sms", frozenset({"sms"}), sms),
        Route(PARTY_WEBHOOK, frozenset({PARTY_WEBHOOK}), hook, party_delivery(outbox)),
    ]
    worker = OutboxDispatcher(uow, routes, lambda: now[0], outbox)
    notice = Notice(NoticeKind.STATUS_EVENT, "account.locked", "{}")
    await uow.atomically(lambda r: r.outbox.add(PARTY_WEBHOOK, "rp_1", notice, now[0]))
    await uow.atomically(lambda r: r.outbox.add("sms", "+84912345678", notice, now[0]))
    for _ in range(MAX_ATTEMPTS + 2):
        await worker.deliver_pending()
        now[0] += timedelta(hours=1)  # past any single wait of either schedule
    assert (sms.calls, hook.calls) == (3, MAX_ATTEMPTS)
    dead = await uow.read(lambda r: r.outbox.dead_letters(10))
    assert sorted((d.sender, d.attempts, d.retriable) for d in dead) == [
        (PARTY_WEBHOOK, MAX_ATTEMPTS, True),
        ("sms", 3, True),
    ]
    schedule = party_delivery(outbox)
    assert schedule.claim_seconds == outbox.claim_seconds
    assert (schedule.retry_base_seconds, schedule.retry_max_seconds) == (10, 3600)


async def test_each_attempt_is_signed_when_it_is_sent() -> None:
    """A retry hours later carries that moment's signature, not the first
    attempt's: receivers refuse one signed more than 5 minutes ago."""
    seen: list[httpx.Request] = []
    clock = [NOW]

    async def prepare(message: OutgoingMessage, signed_at: datetime) -> PreparedEvent:
        return replace(EVENT, signature=f"signed at {signed_at.timestamp():.0f}")

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503 if len(seen) == 1 else 204)

    sender = PartyWebhookSender(
        prepare, clock=lambda: clock[0], transport=httpx.MockTransport(handle)
    )
    with pytest.raises(DeliveryFailed):
        await sender.send(MESSAGE)
    clock[0] += 5 * 3600.5
    await sender.send(MESSAGE)
    await sender.aclose()
    assert [r.headers["x-eid-signature"] for r in seen] == [
        f"signed at {NOW:.0f}",
        f"signed at {int(clock[0])}",
    ]
    assert seen[0].content == seen[1].content == EVENT.body
