"""Outbox delivery rules against the in-memory store: routing by channel,
per-sender state, backoff, dead letters and what is erased when; plus the
sender settings that refuse to start half configured."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from eid_service.cli import main
from eid_service.config import Settings
from eid_service.domain.notices import Language, NoticeKind, code_notice, state_notice
from eid_service.notify.backoff import retry_delay
from eid_service.notify.dispatcher import OutboxDispatcher
from eid_service.notify.failures import DeliveryFailed, Undeliverable, describe
from eid_service.notify.senders import ALL_CHANNELS, Route, routes_of
from eid_service.notify.settings import DeliverySettings, SmtpSettings, WebhookSettings
from eid_service.notify.smtp import SmtpSender
from eid_service.notify.webhook import sign, signature_is_valid
from eid_service.use_cases.ports import OutgoingMessage, RetryOutcome
from tests.unit.fake_store import FakeUnitOfWork

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
POLICY = DeliverySettings(max_attempts=3, retry_base_seconds=10, retry_max_seconds=60)
LATER = timedelta(minutes=5)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Phone:
    """A sender that fails `failures` times (-1: always), then records."""

    def __init__(self, failures: int = 0, permanent: bool = False) -> None:
        self.failures = failures
        self.permanent = permanent
        self.got: list[str] = []
        self.calls = 0

    async def send(self, message: OutgoingMessage) -> None:
        self.calls += 1
        if self.failures != 0:
            self.failures -= 1
            raise Undeliverable("HTTP 400") if self.permanent else DeliveryFailed("HTTP 503")
        self.got.append(message.id)


async def _add(uow: FakeUnitOfWork, kind: NoticeKind, channel: str = "sms") -> str:
    if kind.value.endswith("_code"):
        notice = code_notice(kind, "654321", timedelta(minutes=10), Language.ENGLISH)
    else:
        notice = state_notice(kind, Language.ENGLISH)
    return await uow.atomically(lambda r: r.outbox.add(channel, "+84912345678", notice, T0))


async def _passes(worker: OutboxDispatcher, clock: Clock, n: int) -> None:
    for _ in range(n):
        await worker.deliver_pending()
        clock.now += LATER


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    base, cap = timedelta(seconds=5), timedelta(minutes=5)
    lows = [retry_delay(n, base, cap, rand=lambda: 0.0) for n in range(1, 9)]
    highs = [retry_delay(n, base, cap, rand=lambda: 1.0) for n in range(1, 9)]
    assert [h.total_seconds() for h in highs] == [5, 10, 20, 40, 80, 160, 300, 300]
    assert [lo * 2 for lo in lows] == highs  # at least half the delay, at most all of it
    assert retry_delay(10_000, base, cap) <= cap


def test_errors_are_stored_as_classes_never_as_their_messages() -> None:
    assert describe(ConnectionError("+84912345678 unreachable")) == "ConnectionError"
    assert describe(Undeliverable("HTTP 400")) == "Undeliverable: HTTP 400"


async def test_each_sender_of_the_channel_gets_the_message_once() -> None:
    uow, clock = FakeUnitOfWork(), Clock()
    good, bad, mail = Phone(), Phone(failures=2), Phone()
    routes = [
        Route("good", ALL_CHANNELS, good),
        Route("bad", frozenset({"sms"}), bad),
        Route("mail", frozenset({"email"}), mail),
    ]
    worker = OutboxDispatcher(uow, routes, clock, POLICY)
    sms = await _add(uow, NoticeKind.ACTIVATION_CODE)
    await _passes(worker, clock, 4)
    assert (good.got, bad.got, mail.got) == ([sms], [sms], [])
    assert bad.calls == 3
    row = uow.state.outbox[sms]
    assert (row.destination, row.notice) == (None, None)


async def test_a_failure_waits_its_backoff_before_the_next_attempt() -> None:
    uow, clock = FakeUnitOfWork(), Clock()
    phone = Phone(failures=1)
    worker = OutboxDispatcher(uow, [phone], clock, POLICY)
    await _add(uow, NoticeKind.ACTIVATION_CODE)
    await worker.deliver_pending()
    clock.now += timedelta(seconds=4)  # less than half the first delay (10 s)
    await worker.deliver_pending()
    assert phone.calls == 1
    clock.now += timedelta(seconds=7)
    await worker.deliver_pending()
    assert phone.calls == 2 and len(phone.got) == 1


async def test_a_permanent_refusal_is_dead_after_one_attempt() -> None:
    uow, clock = FakeUnitOfWork(), Clock()
    phone = Phone(failures=-1, permanent=True)
    worker = OutboxDispatcher(uow, [phone], clock, POLICY)
    message_id = await _add(uow, NoticeKind.ACCOUNT_LOCKED)
    await _passes(worker, clock, 3)
    (dead,) = await uow.read(lambda r: r.outbox.dead_letters(10))
    assert (dead.message_id, dead.attempts, dead.last_error) == (
        message_id,
        1,
        "Undeliverable: HTTP 400",
    )
    assert phone.calls == 1


@pytest.mark.parametrize(
    ("kind", "kept"),
    [
        (NoticeKind.ACTIVATION_CODE, False),
        (NoticeKind.LOCK_CODE, False),
        (NoticeKind.UNLOCK_CODE, False),
        (NoticeKind.ACCOUNT_LOCKED, True),
        (NoticeKind.ACCOUNT_UNLOCKED, True),
    ],
)
async def test_a_dead_code_is_erased_and_a_dead_notice_kept_for_retry(
    kind: NoticeKind, kept: bool
) -> None:
    uow, clock = FakeUnitOfWork(), Clock()
    phone = Phone(failures=-1)
    worker = OutboxDispatcher(uow, [phone], clock, POLICY)
    message_id = await _add(uow, kind)
    await _passes(worker, clock, POLICY.max_attempts + 1)
    assert phone.calls == POLICY.max_attempts
    assert (uow.state.outbox[message_id].notice is not None) is kept
    phone.failures = 0
    outcome = await uow.atomically(lambda r: r.outbox.retry_dead(message_id, clock.now))
    assert outcome is (RetryOutcome.RETRIED if kept else RetryOutcome.ERASED)
    await worker.deliver_pending()
    assert phone.got == ([message_id] if kept else [])


async def test_without_a_sender_for_its_channel_a_message_waits() -> None:
    uow, clock = FakeUnitOfWork(), Clock()
    worker = OutboxDispatcher(uow, [Route("sms", frozenset({"sms"}), Phone())], clock, POLICY)
    message_id = await _add(uow, NoticeKind.ACTIVATION_CODE, channel="email")
    await worker.deliver_pending()
    row = uow.state.outbox[message_id]
    assert (row.routed_at, row.deliveries, row.notice is not None) == (None, {}, True)


async def test_a_stop_ends_the_dispatcher_without_waiting_out_its_poll(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A poll interval far longer than the wait below: only the stop can end it.
    monkeypatch.setattr("eid_service.notify.dispatcher.POLL_INTERVAL_SECONDS", 600.0)
    uow, clock = FakeUnitOfWork(), Clock()
    worker = OutboxDispatcher(uow, [Route("sms", frozenset({"sms"}), Phone())], clock, POLICY)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    await asyncio.sleep(0.05)  # into its poll
    stop.set()
    await asyncio.wait_for(running, 30)


def test_sender_names_are_unique() -> None:
    with pytest.raises(ValueError, match="unique"):
        routes_of([Route("a", ALL_CHANNELS, Phone()), Route("a", ALL_CHANNELS, Phone())])
    assert [r.name for r in routes_of([Phone()])] == ["phone"]


def test_the_webhook_signature_covers_timestamp_and_body() -> None:
    secret, body = "0123456789abcdef", b'{"id":"msg_1"}'
    signature = sign(secret, "1767225600", body)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert signature_is_valid(secret, "1767225600", body, signature, now=1767225700)
    assert not signature_is_valid(secret, "1767225601", body, signature, now=1767225700)
    assert not signature_is_valid(secret, "1767225600", body + b" ", signature, now=1767225700)
    assert not signature_is_valid(secret, "1767225600", body, signature, now=1767225600 + 3600)
    assert not signature_is_valid(secret, "soon", body, signature, now=1767225600)


def test_the_message_id_header_is_the_outbox_id() -> None:
    sender = SmtpSender(SmtpSettings(host="relay", from_address="no-reply@eid.vn"))
    message = OutgoingMessage(
        "msg_00ff",
        "email",
        NoticeKind.ACCOUNT_LOCKED,
        "lan@example.vn",
        "Khóa tài khoản",
        "Nội dung",
    )
    email = sender.compose(message)
    assert email["Message-ID"] == "<msg_00ff@eid.local>"
    assert email["Subject"] == "Khóa tài khoản"
    assert email.get_content().strip() == "Nội dung"


def test_settings_read_every_sender_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "EID_SMTP_HOST": "smtp.example.vn",
            "EID_SMTP_PORT": "2525",
            "EID_SMTP_FROM": "eid <no-reply@example.vn>",
            "EID_SMTP_USERNAME": "relay",
            "EID_SMTP_PASSWORD": "secret password",
            "EID_SMTP_CA_FILE": "/etc/ssl/relay-ca.pem",
            "EID_SMS_WEBHOOK_URL": "https://sms.example.vn/send",
            "EID_SMS_WEBHOOK_SECRET": "s" * 32,
            "EID_SMS_WEBHOOK_TIMEOUT_SECONDS": "3",
            "EID_OUTBOX_MAX_ATTEMPTS": "5",
        }
    )
    assert settings.smtp is not None and settings.smtp.port == 2525
    assert settings.smtp.starttls and settings.smtp.ca_file == Path("/etc/ssl/relay-ca.pem")
    assert settings.sms_webhook is not None and settings.sms_webhook.timeout_seconds == 3
    assert settings.delivery.max_attempts == 5
    assert "secret" not in repr(settings.smtp) and "s" * 32 not in repr(settings.sms_webhook)
    plain = Settings.from_env({})
    assert (plain.smtp, plain.sms_webhook) == (None, None)


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"EID_SMS_WEBHOOK_URL": "https://sms.example.vn/send"}, "EID_SMS_WEBHOOK_SECRET"),
        (
            {"EID_SMS_WEBHOOK_URL": "https://sms.example.vn", "EID_SMS_WEBHOOK_SECRET": "short"},
            "EID_SMS_WEBHOOK_SECRET",
        ),
        (
            {"EID_SMS_WEBHOOK_URL": "http://sms.example.vn", "EID_SMS_WEBHOOK_SECRET": "s" * 20},
            "https",
        ),
        ({"EID_SMTP_HOST": "smtp.example.vn"}, "EID_SMTP_FROM"),
        (
            {
                "EID_SMTP_HOST": "smtp.example.vn",
                "EID_SMTP_FROM": "a@b.vn",
                "EID_SMTP_STARTTLS": "false",
                "EID_SMTP_USERNAME": "u",
                "EID_SMTP_PASSWORD": "p",
            },
            "STARTTLS",
        ),
        ({"EID_SMTP_HOST": "h", "EID_SMTP_FROM": "a@b.vn", "EID_SMTP_USERNAME": "u"}, "together"),
        ({"EID_OUTBOX_MAX_ATTEMPTS": "0"}, "EID_OUTBOX_MAX_ATTEMPTS"),
    ],
)
def test_a_half_configured_sender_refuses_to_start(env: dict[str, str], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        Settings.from_env(env)


def test_plain_http_is_allowed_to_a_local_gateway_only() -> None:
    WebhookSettings("http://127.0.0.1:8080/sms", "s" * 16)
    WebhookSettings("http://localhost/sms", "s" * 16)
    with pytest.raises(ValueError, match="https"):
        WebhookSettings("http://10.0.0.8/sms", "s" * 16)


def test_the_server_refuses_to_start_with_a_webhook_but_no_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EID_SMS_WEBHOOK_URL", "https://sms.example.vn/send")
    monkeypatch.delenv("EID_SMS_WEBHOOK_SECRET", raising=False)
    assert main(["serve"]) == 2
    assert "EID_SMS_WEBHOOK_SECRET" in capsys.readouterr().out
