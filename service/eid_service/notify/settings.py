"""How outgoing messages leave: the SMTP relay, the SMS gateway webhook, and
how often a failed delivery is retried. Read from EID_* variables; a sender
that is half configured refuses to start rather than lose messages."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from eid_service import settings_values as values

MIN_SECRET_LENGTH = 16


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class DeliverySettings:
    """Retries: attempt n waits about retry_base * 2**(n-1) (half of it
    jittered), at most retry_max; after max_attempts the delivery is dead.
    A worker's claim on a delivery lapses after claim_seconds (a crash), and
    one send may take at most half of that."""

    max_attempts: int = 8
    retry_base_seconds: float = 5.0
    retry_max_seconds: float = 300.0
    claim_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("EID_OUTBOX_MAX_ATTEMPTS must be at least 1")
        if not 0 < self.retry_base_seconds <= self.retry_max_seconds:
            raise ValueError("need 0 < EID_OUTBOX_RETRY_BASE_SECONDS <= ..._RETRY_MAX_SECONDS")
        if self.claim_seconds < 1:
            raise ValueError("EID_OUTBOX_CLAIM_SECONDS must be at least 1")

    @property
    def claim_for(self) -> timedelta:
        return timedelta(seconds=self.claim_seconds)

    @property
    def send_timeout_seconds(self) -> float:
        return self.claim_seconds / 2


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    from_address: str
    port: int = 587
    starttls: bool = True
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_seconds: float = 10.0
    # Message-ID: <msg_…@domain>; receivers drop duplicates by it.
    message_id_domain: str = "eid.local"
    # A private CA to trust for STARTTLS (else the system's).
    ca_file: Path | None = None

    def __post_init__(self) -> None:
        if not self.from_address or "@" not in self.from_address:
            raise ValueError("EID_SMTP_FROM (an email address) is required with EID_SMTP_HOST")
        if (self.username is None) != (self.password is None):
            raise ValueError("EID_SMTP_USERNAME and EID_SMTP_PASSWORD go together")
        if self.username is not None and not self.starttls:
            raise ValueError("SMTP credentials are only sent over STARTTLS: set EID_SMTP_STARTTLS")


@dataclass(frozen=True)
class WebhookSettings:
    url: str
    secret: str = field(repr=False)
    timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in {"https", "http"} or not parts.hostname:
            raise ValueError("EID_SMS_WEBHOOK_URL must be an http(s) URL")
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise ValueError("EID_SMS_WEBHOOK_URL must use https (http only to localhost)")
        if len(self.secret) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"EID_SMS_WEBHOOK_SECRET ({MIN_SECRET_LENGTH}+ characters) is required"
                " with EID_SMS_WEBHOOK_URL"
            )
        if self.timeout_seconds <= 0:
            raise ValueError("EID_SMS_WEBHOOK_TIMEOUT_SECONDS must be positive")


def delivery_from_env(env: Mapping[str, str]) -> DeliverySettings:
    base = DeliverySettings()
    return DeliverySettings(
        max_attempts=values.integer(env, "EID_OUTBOX_MAX_ATTEMPTS", base.max_attempts),
        retry_base_seconds=values.number(
            env, "EID_OUTBOX_RETRY_BASE_SECONDS", base.retry_base_seconds
        ),
        retry_max_seconds=values.number(
            env, "EID_OUTBOX_RETRY_MAX_SECONDS", base.retry_max_seconds
        ),
        claim_seconds=values.number(env, "EID_OUTBOX_CLAIM_SECONDS", base.claim_seconds),
    )


def smtp_from_env(env: Mapping[str, str]) -> SmtpSettings | None:
    host = env.get("EID_SMTP_HOST", "").strip()
    if not host:
        return None
    ca_file = env.get("EID_SMTP_CA_FILE", "").strip()
    return SmtpSettings(
        host=host,
        from_address=env.get("EID_SMTP_FROM", "").strip(),
        port=values.integer(env, "EID_SMTP_PORT", 587, minimum=1),
        starttls=values.flag(env, "EID_SMTP_STARTTLS", True),
        username=env.get("EID_SMTP_USERNAME") or None,
        password=env.get("EID_SMTP_PASSWORD") or None,
        timeout_seconds=values.number(env, "EID_SMTP_TIMEOUT_SECONDS", 10.0, above=True),
        message_id_domain=env.get("EID_SMTP_MESSAGE_ID_DOMAIN", "eid.local").strip(),
        ca_file=Path(ca_file) if ca_file else None,
    )


def webhook_from_env(env: Mapping[str, str]) -> WebhookSettings | None:
    url = env.get("EID_SMS_WEBHOOK_URL", "").strip()
    if not url:
        return None
    return WebhookSettings(
        url=url,
        secret=env.get("EID_SMS_WEBHOOK_SECRET", ""),
        timeout_seconds=values.number(env, "EID_SMS_WEBHOOK_TIMEOUT_SECONDS", 10.0),
    )
