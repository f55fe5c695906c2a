"""Status events to relying parties' webhooks: one route of the outbox, each
message POSTed to the URL its party has at the time of sending.

    POST <the party's webhook URL>
    Content-Type: application/json
    Idempotency-Key: evt_…       the event id, the same on every retry
    X-Eid-Signature: <JWS>       Ed25519, by the published keys, signed per attempt

(eid_client.status_events describes the body and checks the signature.)
A 2xx is delivered if the whole answer comes within 10 s; 408, 429 and
5xx, timeouts and refused connections are tried again (`party_delivery`:
for hours, longer than an SMS), then the delivery is dead (listed and
retried by `eid-server outbox`); any other status is dead at once. A party
without a webhook (removed, or the party deleted) gets nothing: the event is
dead at once. A suspended party's events wait, retried like a failure."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime

import httpx

from eid_client.status_events import IDEMPOTENCY_HEADER, SIGNATURE_HEADER
from eid_service.notify.failures import DeliveryFailed, Undeliverable
from eid_service.notify.settings import DeliverySettings
from eid_service.notify.webhook import post, quiet_client
from eid_service.use_cases.ports import OutgoingMessage
from eid_service.use_cases.status_events import Held, PreparedEvent

TIMEOUT_SECONDS = 10.0
# A party's receiver may be down for a deploy or a night, longer than an SMS
# gateway: 18 attempts, 10 s apart doubling to an hour, last 5 to 9 hours
# (jitter) before an event is a dead letter.
MAX_ATTEMPTS = 18
RETRY_BASE_SECONDS = 10.0
RETRY_MAX_SECONDS = 3600.0


def party_delivery(outbox: DeliverySettings) -> DeliverySettings:
    """The party webhooks' retry schedule (the outbox's claim time)."""
    return replace(
        outbox,
        max_attempts=MAX_ATTEMPTS,
        retry_base_seconds=RETRY_BASE_SECONDS,
        retry_max_seconds=RETRY_MAX_SECONDS,
    )


Prepare = Callable[[OutgoingMessage, datetime], Awaitable[PreparedEvent | Held]]


class PartyWebhookSender:
    def __init__(
        self,
        prepare: Prepare,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_seconds: float = TIMEOUT_SECONDS,
    ) -> None:
        self._prepare = prepare
        # The receiver's clock judges the signing time: this is the real one.
        self._clock = clock
        self._transport = transport
        self._timeout = timeout_seconds
        self._client: httpx.AsyncClient | None = None

    async def send(self, message: OutgoingMessage) -> None:
        signed_at = datetime.fromtimestamp(int(self._clock()), UTC)
        prepared = await self._prepare(message, signed_at)
        if prepared is Held.NO_WEBHOOK:
            raise Undeliverable(prepared.value)
        if prepared is Held.PARTY_SUSPENDED:
            raise DeliveryFailed(prepared.value)
        assert isinstance(prepared, PreparedEvent)
        headers = {
            "Content-Type": "application/json",
            IDEMPOTENCY_HEADER: prepared.event_id,
            SIGNATURE_HEADER: prepared.signature,
        }
        if self._client is None:
            self._client = quiet_client(self._timeout, self._transport)
        await post(self._client, prepared.url, prepared.body, headers, within_seconds=self._timeout)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
