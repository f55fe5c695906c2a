"""Email through an SMTP relay (stdlib smtplib, on a thread).

STARTTLS and login are settings; credentials never travel in clear
(settings.py refuses that). The Message-ID is made from the outbox message
id, so a resend after a crash carries the same Message-ID and the receiving
side can drop the duplicate."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from eid_service.notify.failures import DeliveryFailed, Undeliverable
from eid_service.notify.settings import SmtpSettings
from eid_service.use_cases.ports import OutgoingMessage


def message_id_header(message_id: str, domain: str) -> str:
    return f"<{message_id}@{domain}>"


class SmtpSender:
    def __init__(self, settings: SmtpSettings, tls: ssl.SSLContext | None = None) -> None:
        self._s = settings
        self._tls = tls

    def compose(self, message: OutgoingMessage) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self._s.from_address
        email["To"] = message.destination
        email["Subject"] = message.subject
        email["Message-ID"] = message_id_header(message.id, self._s.message_id_domain)
        email["Date"] = formatdate(localtime=False, usegmt=True)
        email["Auto-Submitted"] = "auto-generated"
        email.set_content(message.body, charset="utf-8")
        return email

    async def send(self, message: OutgoingMessage) -> None:
        if message.channel != "email":
            raise Undeliverable("not an email")
        await asyncio.to_thread(self._send_now, self.compose(message), message.destination)

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            ca = str(self._s.ca_file) if self._s.ca_file is not None else None
            self._tls = ssl.create_default_context(cafile=ca)
        return self._tls

    def _send_now(self, email: EmailMessage, to: str) -> None:
        s = self._s
        try:
            with smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds) as smtp:
                smtp.ehlo()
                if s.starttls:
                    smtp.starttls(context=self._context())
                    smtp.ehlo()
                if s.username is not None and s.password is not None:
                    smtp.login(s.username, s.password)
                smtp.send_message(email, s.from_address, [to])
        except smtplib.SMTPRecipientsRefused as refused:
            codes = sorted({code for code, _ in refused.recipients.values()})
            raise _by_code(codes[0] if codes else 0, "recipient refused") from None
        except smtplib.SMTPAuthenticationError as denied:
            # A configuration fault: retried, and dead-lettered if it lasts.
            raise DeliveryFailed(f"SMTP {denied.smtp_code} login refused") from None
        except smtplib.SMTPResponseException as answer:
            raise _by_code(answer.smtp_code, "refused") from None
        except (smtplib.SMTPException, OSError) as error:
            raise DeliveryFailed(type(error).__name__) from None


def _by_code(code: int, what: str) -> DeliveryFailed:
    """5xx is permanent, anything else (4xx: try later) is not."""
    if 500 <= code < 600:
        return Undeliverable(f"SMTP {code} {what}")
    return DeliveryFailed(f"SMTP {code} {what}")
