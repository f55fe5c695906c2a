"""SMS through a real HTTP gateway (a local server started here): signed
with HMAC-SHA256 over the timestamp and the exact body, the message id as
Idempotency-Key; a 503 is retried after a backoff, a 400 is dead at once,
N failures make a delivery dead, listed and retried by `eid-server outbox`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from eid_service.domain.notices import NoticeKind
from eid_service.notify.dispatcher import OutboxDispatcher
from eid_service.notify.failures import DeliveryFailed
from eid_service.notify.senders import ALL_CHANNELS, Route
from eid_service.notify.settings import WebhookSettings
from eid_service.notify.webhook import WebhookSender
from eid_service.security.keys import save_key_ring
from eid_service.use_cases.ports import OutgoingMessage
from tests.e2e.conftest import BIN
from tests.integration.harness import RecordingSender
from tests.integration.outbox_kit import FAST, LATER, PHONE, Store, store
from tests.integration.receivers import WEBHOOK_SECRET, SmsGateway, code_in, sms_gateway


def _route(url: str, secret: str = WEBHOOK_SECRET, timeout: float = 5) -> Route:
    sender = WebhookSender(WebhookSettings(url, secret, timeout))
    return Route("webhook", frozenset({"sms"}), sender)


async def test_an_sms_arrives_signed_with_its_id(database_url: str) -> None:
    with sms_gateway() as gw, store(database_url) as s:
        worker = OutboxDispatcher(s.uow, [_route(gw.url)], s.clock, FAST)
        message_id = await s.add("sms", NoticeKind.ACTIVATION_CODE)
        assert await worker.deliver_pending() == 1
        await worker.close()

        (hook,) = gw.hooks()
        assert hook.signature_ok
        assert hook.idempotency_key == message_id
        assert hook.payload["id"] == message_id
        assert (hook.payload["channel"], hook.payload["kind"]) == ("sms", "activation_code")
        assert hook.payload["to"] == PHONE
        assert "Mã kích hoạt" in hook.payload["body"]
        assert code_in(hook.payload["body"]) == "123456"
        assert s.contents(message_id) == (False, False)


async def test_nothing_of_the_message_or_the_url_is_logged(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with sms_gateway(SmsGateway(script=[503, 400])) as gw, store(database_url) as s:
        worker = OutboxDispatcher(s.uow, [_route(gw.url + "?token=gateway-token")], s.clock, FAST)
        message_id = await s.add()
        with caplog.at_level(logging.DEBUG):
            await worker.deliver_pending()
            s.clock.advance(LATER)
            await worker.deliver_pending()
            await worker.close()
        assert len(gw.hooks()) == 2
        assert message_id in caplog.text  # the failures were logged, by id
        for secret in ("gateway-token", "127.0.0.1", PHONE, "123456", "kích hoạt"):
            assert secret not in caplog.text


async def test_a_wrong_secret_fails_the_receivers_check() -> None:
    with sms_gateway() as gw:
        sender = WebhookSender(WebhookSettings(gw.url, "another secret, 16+ long", 5))
        await sender.send(_sms())
        await sender.aclose()
        (hook,) = gw.hooks()
        assert not hook.signature_ok


async def test_a_503_is_retried_after_a_backoff(database_url: str) -> None:
    with sms_gateway(SmsGateway(script=[503])) as gw, store(database_url) as s:
        worker = OutboxDispatcher(s.uow, [_route(gw.url)], s.clock, FAST)
        message_id = await s.add()
        assert await worker.deliver_pending() == 0
        assert await worker.deliver_pending() == 0  # not due yet
        assert len(gw.hooks()) == 1
        s.clock.advance(LATER)
        assert await worker.deliver_pending() == 1
        await worker.close()
        assert gw.ids() == [message_id, message_id]  # the same key on the resend
        assert s.deliveries(message_id) == {"webhook": ("sent", 2)}


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
async def test_a_client_error_is_dead_at_once(status: int) -> None:
    with sms_gateway(SmsGateway(always=status)) as gw:
        sender = WebhookSender(WebhookSettings(gw.url, WEBHOOK_SECRET, 5))
        with pytest.raises(DeliveryFailed) as failed:
            await sender.send(_sms())
        await sender.aclose()
        assert failed.value.detail == f"HTTP {status}"
        assert type(failed.value).__name__ == "Undeliverable"


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503])
async def test_a_server_error_or_throttle_is_retried(status: int) -> None:
    with sms_gateway(SmsGateway(always=status)) as gw:
        sender = WebhookSender(WebhookSettings(gw.url, WEBHOOK_SECRET, 5))
        with pytest.raises(DeliveryFailed) as failed:
            await sender.send(_sms())
        await sender.aclose()
        assert type(failed.value) is DeliveryFailed


async def test_a_gateway_that_does_not_answer_in_time_is_retried() -> None:
    with sms_gateway(SmsGateway(delay=2.0)) as gw:
        sender = WebhookSender(WebhookSettings(gw.url, WEBHOOK_SECRET, 0.2))
        with pytest.raises(DeliveryFailed, match="timeout"):
            await sender.send(_sms())
        await sender.aclose()


async def test_a_gateway_that_is_down_is_retried() -> None:
    with sms_gateway() as gw:
        url = gw.url
    sender = WebhookSender(WebhookSettings(url, WEBHOOK_SECRET, 2))
    with pytest.raises(DeliveryFailed, match="ConnectError"):
        await sender.send(_sms())
    await sender.aclose()


async def test_one_failing_sender_never_makes_the_gateway_resend(database_url: str) -> None:
    with sms_gateway() as gw, store(database_url) as s:
        failing = Route("file", ALL_CHANNELS, _Broken())
        worker = OutboxDispatcher(s.uow, [_route(gw.url), failing], s.clock, FAST)
        message_id = await s.add()
        for _ in range(FAST.max_attempts + 1):
            await worker.deliver_pending()
            s.clock.advance(LATER)
        await worker.close()
        assert gw.ids() == [message_id]
        assert s.deliveries(message_id) == {
            "webhook": ("sent", 1),
            "file": ("dead", FAST.max_attempts),
        }


async def test_dead_after_n_failures_listed_and_retried_by_the_cli(
    database_url: str, tmp_path: Path
) -> None:
    gateway = SmsGateway(always=503)
    with sms_gateway(gateway) as gw, store(database_url) as s:
        worker = OutboxDispatcher(s.uow, [_route(gw.url)], s.clock, FAST)
        notice_id = await s.add("sms", NoticeKind.ACCOUNT_LOCKED)
        code_id = await s.add("sms", NoticeKind.UNLOCK_CODE)
        for _ in range(FAST.max_attempts + 1):
            await worker.deliver_pending()
            s.clock.advance(LATER)
        assert len(gw.hooks()) == 2 * FAST.max_attempts
        assert s.deliveries(notice_id) == {"webhook": ("dead", FAST.max_attempts)}

        listing = _admin(s, tmp_path, database_url, "outbox", "dead")
        assert notice_id in listing and code_id in listing
        assert "account_locked" in listing and "HTTP 503" in listing
        assert PHONE not in listing and "+84" not in listing  # no destination shown
        assert "no (erased)" in listing

        gateway.always = 200
        retried = _admin(s, tmp_path, database_url, "outbox", "retry", "--all")
        assert f"{notice_id}: pending again" in retried
        assert "1 message(s) pending again" in retried
        assert await worker.deliver_pending() == 1
        await worker.close()
        assert gw.ids()[-1] == notice_id
        assert gw.hooks()[-1].payload["kind"] == "account_locked"
        listing = _admin(s, tmp_path, database_url, "outbox", "dead")
        assert notice_id not in listing and code_id in listing
        # An id typed with rich markup in it is printed as typed (it crashed the command).
        typed = "msg_[/]x"
        refused = _admin(s, tmp_path, database_url, "outbox", "retry", typed, expect=1)
        assert f"{typed}: " in refused and "0 message(s) pending again" in refused


def _admin(s: Store, tmp_path: Path, url: str, *args: str, expect: int = 0) -> str:
    """`eid-server` as an operator runs it, on the same database and keys;
    its exit status must be `expect`."""
    keys = tmp_path / "keys.json"
    if not keys.exists():
        save_key_ring(s.ring, keys)
    env = {**os.environ, "EID_DATABASE_URL": url, "EID_KEYS_FILE": str(keys), "COLUMNS": "200"}
    done = subprocess.run(
        [str(BIN / "eid-server"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == expect, done.stderr
    return done.stdout


class _Broken(RecordingSender):
    async def send(self, message: OutgoingMessage) -> None:
        raise ConnectionError("the other sender is down")


def _sms() -> OutgoingMessage:
    return OutgoingMessage(
        "msg_0123456789abcdef", "sms", NoticeKind.ACCOUNT_LOCKED, PHONE, "subject", "body"
    )


class _RawReceiver:
    """An HTTP receiver on a raw socket, for answers no HTTP server would send:
    it takes one request, sends what `_answer` sends until the client hangs up,
    and then sets `hung_up`."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/sms"
        self.hung_up = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self._listener.accept()
        with conn, self._listener:
            conn.recv(65536)
            with contextlib.suppress(OSError):  # the client closed the connection
                self._answer(conn)
        self.hung_up.set()

    def _answer(self, conn: socket.socket) -> None:
        raise NotImplementedError


class _Endless(_RawReceiver):
    """Answers 200 with a body of DECLARED bytes; `sent` counts what it got out."""

    DECLARED = 64 << 20

    def __init__(self) -> None:
        self.sent = 0
        super().__init__()

    def _answer(self, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % self.DECLARED)
        chunk = b"x" * (1 << 20)
        while self.sent < self.DECLARED:
            conn.sendall(chunk)
            self.sent += len(chunk)


async def test_an_answers_body_is_never_read() -> None:
    """Only the status counts; before, the whole body was read into memory (a
    receiver answering 400 MB grew the server by 498 MB: an attacker's pass)."""
    receiver = _Endless()
    sender = WebhookSender(WebhookSettings(receiver.url, WEBHOOK_SECRET, 5))
    await sender.send(_sms())
    await sender.aclose()
    assert await asyncio.to_thread(receiver.hung_up.wait, 10)
    # What the sockets' buffers took before the client hung up, not the body.
    assert receiver.sent < _Endless.DECLARED // 4, receiver.sent


class _Dribbling(_RawReceiver):
    """Sends its answer's status line and headers a byte at a time, each byte
    well within httpx's per-read timeout, and never ends them (2,000 s)."""

    def _answer(self, conn: socket.socket) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 100_000:
            conn.sendall(bytes([byte]))
            time.sleep(0.02)


async def test_a_gateway_dribbling_its_answer_is_cut_off_as_a_timeout() -> None:
    """The timeout bounds the whole answer, not each read: a gateway sending
    its headers a byte at a time held the delivery (and its dispatcher slot)
    until the dispatcher's own bound, as a party's webhook did before."""
    receiver = _Dribbling()
    sender = WebhookSender(WebhookSettings(receiver.url, WEBHOOK_SECRET, 0.5))
    async with asyncio.timeout(20):  # a hang guard: before, it ran for 2,000 s
        with pytest.raises(DeliveryFailed, match="timeout"):
            await sender.send(_sms())
    await sender.aclose()
