"""SMS through an HTTP gateway: a signed JSON POST.

    POST <EID_SMS_WEBHOOK_URL>
    Content-Type: application/json
    Idempotency-Key: msg_…                  the outbox message id, the same on every resend
    X-Eid-Timestamp: 1767225600             unix seconds when this attempt was signed
    X-Eid-Signature: sha256=<hex>           HMAC-SHA256(secret, timestamp + "." + body bytes)

    {"id": "msg_…", "channel": "sms", "kind": "activation_code", "to": "+84…", "body": "…"}

A 2xx is delivered; 408, 429 and 5xx (and timeouts, refused connections) are
tried again later; any other status is permanent (the delivery is dead).
A receiver checks the signature over the exact bytes it received, refuses
timestamps far from its clock (replays), and drops ids it has seen."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable

import httpx

from eid_service.notify.failures import DeliveryFailed, Undeliverable
from eid_service.notify.settings import WebhookSettings
from eid_service.use_cases.ports import OutgoingMessage

SIGNATURE_HEADER = "X-Eid-Signature"
TIMESTAMP_HEADER = "X-Eid-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
RETRIED_STATUSES = frozenset({408, 429})
# How far a receiver should let a timestamp stray from its clock.
DEFAULT_TOLERANCE_SECONDS = 300


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signature_is_valid(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """What a receiver checks (in any language: this is the whole scheme)."""
    try:
        fresh = abs(now - int(timestamp)) <= tolerance
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature)


def quiet_client(
    timeout_seconds: float, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """An HTTP client that does not log URLs: httpx logs each request's URL
    at INFO (and httpcore its headers at DEBUG), and a URL may carry a token."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return httpx.AsyncClient(timeout=timeout_seconds, transport=transport)


async def post(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    within_seconds: float,
) -> None:
    """POSTs; returns on a 2xx, raises DeliveryFailed to try again later
    (408, 429, 5xx, timeouts, connection errors) or Undeliverable (any other
    status; redirects are not followed). Only the status is read: the
    answer's body is never read, so a receiver cannot fill the worker's
    memory (found by an attacker's pass: an answer of 400 MB grew the
    server by 498 MB). The whole answer (status and headers) must come
    `within_seconds`: httpx bounds each read, and a receiver sending a byte
    at a time would hold the delivery and its slot until the dispatcher's
    bound, half the claim (30 s)."""
    try:
        async with asyncio.timeout(within_seconds):
            async with client.stream("POST", url, content=body, headers=headers) as response:
                status = response.status_code  # leaving closes the connection unread
    except (httpx.TimeoutException, TimeoutError):
        raise DeliveryFailed("timeout") from None
    except httpx.InvalidURL:
        # An address httpx cannot use (an octal quad): sending again cannot help.
        raise Undeliverable("invalid URL") from None
    except httpx.HTTPError as error:
        # Never str(error): it names the URL, which may carry a token.
        raise DeliveryFailed(type(error).__name__) from None
    if 200 <= status < 300:
        return
    if status in RETRIED_STATUSES or status >= 500:
        raise DeliveryFailed(f"HTTP {status}")
    raise Undeliverable(f"HTTP {status}")


class WebhookSender:
    def __init__(
        self,
        settings: WebhookSettings,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._s = settings
        self._clock = clock
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def payload(self, message: OutgoingMessage) -> bytes:
        fields = {
            "id": message.id,
            "channel": message.channel,
            "kind": message.kind.value,
            "to": message.destination,
            "body": message.body,
        }
        return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    async def send(self, message: OutgoingMessage) -> None:
        body = self.payload(message)
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            IDEMPOTENCY_HEADER: message.id,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._s.secret, timestamp, body),
        }
        if self._client is None:
            self._client = quiet_client(self._s.timeout_seconds, self._transport)
        await post(self._client, self._s.url, body, headers, within_seconds=self._s.timeout_seconds)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
