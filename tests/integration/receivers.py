"""The far side of the real senders, run by the tests: an SMTP server
(aiosmtpd) and an SMS gateway (a stdlib HTTP server) that record what they
received, the way a provider's system would."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from eid_service.notify.webhook import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature_is_valid,
)
from tests.e2e.conftest import free_port

CODE = re.compile(r"\b(\d{6})\b")
WEBHOOK_SECRET = "a shared secret for the test gateway"


def code_in(text: str) -> str:
    found = CODE.search(text)
    assert found is not None, "no 6-digit code in the message"
    return found.group(1)


# --- the SMS gateway -------------------------------------------------------------


@dataclass
class Hook:
    """One POST as the gateway received it."""

    idempotency_key: str
    signature_ok: bool
    payload: dict[str, Any]


@dataclass
class SmsGateway:
    """Answers each POST with the next scripted status (200 once the script
    runs out) after `delay` seconds, and records it."""

    secret: str = WEBHOOK_SECRET
    script: list[int] = field(default_factory=list)
    always: int = 200
    delay: float = 0.0
    received: list[Hook] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def answer(self, hook: Hook) -> int:
        with self.lock:
            self.received.append(hook)
            return self.script.pop(0) if self.script else self.always

    def hooks(self) -> list[Hook]:
        with self.lock:
            return list(self.received)

    def ids(self) -> list[str]:
        return [h.idempotency_key for h in self.hooks()]

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Hook]:
        """At least `count` requests (polls, then fails loudly)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hooks = self.hooks()
            if len(hooks) >= count:
                return hooks
            time.sleep(0.02)
        raise AssertionError(f"the gateway got {len(self.hooks())} requests, not {count}")


@contextmanager
def sms_gateway(gateway: SmsGateway | None = None) -> Iterator[SmsGateway]:
    gw = gateway or SmsGateway()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                payload = json.loads(body)
            except ValueError:
                # Cut off mid-request (the sender was killed): never received.
                self.send_response(400)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            ok = signature_is_valid(
                gw.secret,
                self.headers.get(TIMESTAMP_HEADER, ""),
                body,
                self.headers.get(SIGNATURE_HEADER, ""),
                time.time(),
            )
            hook = Hook(self.headers.get(IDEMPOTENCY_HEADER, ""), ok, payload)
            status = gw.answer(hook)
            if gw.delay:
                time.sleep(gw.delay)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    gw.url = f"http://127.0.0.1:{server.server_address[1]}/sms"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield gw
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# --- the SMTP server -------------------------------------------------------------


@dataclass
class Mailbox:
    """Mail as the SMTP server accepted it; `refuse` answers RCPT with it."""

    refuse: str | None = None
    mails: list[EmailMessage] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 0

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.refuse is not None:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.original_content or b""
        mail = message_from_bytes(content, policy=policy.default)
        assert isinstance(mail, EmailMessage)
        self.mails.append(mail)
        login: Any = getattr(session, "login_data", None)
        if isinstance(login, bytes):
            self.logins.append(login.decode())
        return "250 OK"


@dataclass(frozen=True)
class Tls:
    server: ssl.SSLContext
    ca_file: Path


def self_signed_tls(folder: Path) -> Tls:
    """A certificate for 127.0.0.1, made now; the PEM doubles as the CA file."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "eid test smtp")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return Tls(context, cert_file)


@contextmanager
def smtp_server(
    mailbox: Mailbox | None = None,
    *,
    tls: Tls | None = None,
    accounts: dict[str, str] | None = None,
) -> Iterator[Mailbox]:
    """aiosmtpd on a free port; with `tls`, STARTTLS is required, and with
    `accounts` (login: password), AUTH too."""
    box = mailbox or Mailbox()
    known = accounts or {}

    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and known.get(data.login.decode()) == (
            data.password.decode()
        )
        # handled=False: aiosmtpd answers a failure itself (535).
        return AuthResult(success=ok, handled=ok, auth_data=data if ok else None)

    options: dict[str, Any] = {}
    if tls is not None:
        options.update(tls_context=tls.server, require_starttls=True)
    if accounts is not None:
        options.update(authenticator=authenticate, auth_require_tls=True, auth_required=True)
    box.port = free_port()
    controller = Controller(box, hostname=box.host, port=box.port, **options)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()
