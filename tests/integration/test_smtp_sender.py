"""Email through a real SMTP server (aiosmtpd, started here): the Vietnamese
subject and body arrive, the code is read from what the server received,
the Message-ID is the outbox message id, STARTTLS and login work, and a
refused recipient is dead at once."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from eid_service.domain.notices import NoticeKind
from eid_service.notify.dispatcher import OutboxDispatcher
from eid_service.notify.failures import DeliveryFailed
from eid_service.notify.senders import Route
from eid_service.notify.settings import SmtpSettings
from eid_service.notify.smtp import SmtpSender
from eid_service.use_cases.ports import OutgoingMessage
from tests.integration.outbox_kit import EMAIL, FAST, LATER, store
from tests.integration.receivers import Mailbox, code_in, self_signed_tls, smtp_server

PLAIN = SmtpSettings(
    host="127.0.0.1",
    from_address="eid <no-reply@eid.test>",
    port=0,
    starttls=False,
    message_id_domain="eid.test",
    timeout_seconds=5,
)


def _route(settings: SmtpSettings) -> Route:
    return Route("smtp", frozenset({"email"}), SmtpSender(settings))


async def test_an_activation_email_arrives_in_vietnamese(database_url: str) -> None:
    with smtp_server() as box, store(database_url) as s:
        worker = OutboxDispatcher(s.uow, [_route(replace(PLAIN, port=box.port))], s.clock, FAST)
        message_id = await s.add("email", NoticeKind.ACTIVATION_CODE)
        assert await worker.deliver_pending() == 1

        (mail,) = box.mails
        assert mail["Subject"] == "Mã kích hoạt tài khoản định danh điện tử"
        assert mail["To"] == EMAIL
        assert mail["Message-ID"] == f"<{message_id}@eid.test>"
        body = mail.get_content()
        assert "Mã kích hoạt tài khoản của bạn là" in body
        assert code_in(body) == "123456"
        assert s.contents(message_id) == (False, False)


async def test_starttls_and_login(database_url: str, tmp_path: Path) -> None:
    tls = self_signed_tls(tmp_path)
    accounts = {"eid-relay": "relay password 1"}
    settings = replace(
        PLAIN, starttls=True, username="eid-relay", password="relay password 1", ca_file=tls.ca_file
    )
    with smtp_server(tls=tls, accounts=accounts) as box, store(database_url) as s:
        worker = OutboxDispatcher(s.uow, [_route(replace(settings, port=box.port))], s.clock, FAST)
        message_id = await s.add("email", NoticeKind.LOCK_CODE)
        assert await worker.deliver_pending() == 1
        (mail,) = box.mails
        assert mail["Message-ID"] == f"<{message_id}@eid.test>"
        assert box.logins == ["eid-relay"]
        assert code_in(mail.get_content()) == "123456"


async def test_a_wrong_password_is_retried_not_dropped(tmp_path: Path) -> None:
    tls = self_signed_tls(tmp_path)
    with smtp_server(tls=tls, accounts={"eid-relay": "the right one"}) as box:
        sender = SmtpSender(
            replace(
                PLAIN,
                port=box.port,
                starttls=True,
                username="eid-relay",
                password="a wrong one",
                ca_file=tls.ca_file,
            )
        )
        with pytest.raises(DeliveryFailed) as failed:
            await sender.send(_email())
        assert type(failed.value) is DeliveryFailed  # not Undeliverable: retried
        assert box.mails == []


async def test_an_untrusted_certificate_is_refused(tmp_path: Path) -> None:
    tls = self_signed_tls(tmp_path)
    with smtp_server(tls=tls) as box:
        sender = SmtpSender(replace(PLAIN, port=box.port, starttls=True))  # system CAs only
        with pytest.raises(DeliveryFailed, match="SSLCertVerificationError"):
            await sender.send(_email())
        assert box.mails == []


async def test_a_refused_recipient_is_dead_at_once(database_url: str) -> None:
    with smtp_server(Mailbox(refuse="550 5.1.1 no such mailbox")) as box, store(database_url) as s:
        worker = OutboxDispatcher(s.uow, [_route(replace(PLAIN, port=box.port))], s.clock, FAST)
        message_id = await s.add("email", NoticeKind.ACCOUNT_LOCKED)
        await worker.deliver_pending()
        s.clock.advance(LATER)
        await worker.deliver_pending()
        assert s.deliveries(message_id) == {"smtp": ("dead", 1)}
        assert s.rows("SELECT last_error FROM outbox_deliveries") == [
            ("Undeliverable: SMTP 550 recipient refused",)
        ]


def _email() -> OutgoingMessage:
    return OutgoingMessage(
        "msg_0123456789abcdef", "email", NoticeKind.ACCOUNT_LOCKED, EMAIL, "subject", "body"
    )
