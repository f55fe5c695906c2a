"""Settings, read from the environment (prefix EID_) with safe local defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

from eid_service.domain.notices import Language, parse_language
from eid_service.domain.rate_limits import Limit, SendLimits
from eid_service.domain.share import SharePolicy
from eid_service.notify.settings import (
    DeliverySettings,
    SmtpSettings,
    WebhookSettings,
    delivery_from_env,
    smtp_from_env,
    webhook_from_env,
)

DEFAULT_LISTEN = "127.0.0.1:50051"
DEFAULT_DATA_DIR = Path("var")


def _flag(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """Everything the server can be told. Defaults suit `make run` on a laptop."""

    listen: str = DEFAULT_LISTEN
    database_url: str = f"sqlite:///{DEFAULT_DATA_DIR}/eid.db"
    keys_file: Path = DEFAULT_DATA_DIR / "keys.json"
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    # Development senders (off unless asked for, as `make run` does): messages,
    # one-time codes included, go to stdout and are appended to this file.
    outbox_file: Path | None = None
    console_sender: bool = False
    reflection: bool = True
    grace_seconds: float = 10.0
    max_concurrent_rpcs: int = 2000
    max_message_bytes: int = 1 << 20
    # Peers whose x-forwarded-for names the real client (load balancers).
    trusted_proxies: frozenset[str] = frozenset()
    # How often expired sessions, shares and request ids are purged.
    purge_interval_seconds: float = 300.0
    # The language of SMS and email texts: "vi" (default) or "en".
    language: Language = Language.VIETNAMESE
    # Limits on Register and on code requests (domain/rate_limits.py).
    send_limits: SendLimits = field(default_factory=SendLimits)
    # Real senders (notify/settings.py): email through SMTP, SMS through a
    # signed webhook; and how failed deliveries are retried.
    smtp: SmtpSettings | None = None
    sms_webhook: WebhookSettings | None = None
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    # Offline credentials' issuer, the longest share lifetime, clock skew.
    shares: SharePolicy = field(default_factory=SharePolicy)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        base = cls()
        outbox = env.get("EID_OUTBOX_FILE")
        return cls(
            listen=env.get("EID_LISTEN", base.listen),
            database_url=env.get("EID_DATABASE_URL", base.database_url),
            keys_file=Path(env.get("EID_KEYS_FILE", str(base.keys_file))),
            workers=int(env.get("EID_WORKERS", str(base.workers))),
            outbox_file=Path(outbox) if outbox else None,
            console_sender=_flag(env.get("EID_CONSOLE_SENDER", "false")),
            reflection=_flag(env.get("EID_REFLECTION", "true")),
            grace_seconds=float(env.get("EID_GRACE_SECONDS", str(base.grace_seconds))),
            max_concurrent_rpcs=int(
                env.get("EID_MAX_CONCURRENT_RPCS", str(base.max_concurrent_rpcs))
            ),
            trusted_proxies=frozenset(
                p.strip() for p in env.get("EID_TRUSTED_PROXIES", "").split(",") if p.strip()
            ),
            purge_interval_seconds=float(
                env.get("EID_PURGE_INTERVAL_SECONDS", str(base.purge_interval_seconds))
            ),
            language=parse_language(env.get("EID_LANGUAGE", base.language.value)),
            send_limits=_send_limits(env, base.send_limits),
            smtp=smtp_from_env(env),
            sms_webhook=webhook_from_env(env),
            delivery=delivery_from_env(env),
            shares=_share_policy(env, base.shares),
        )


def _share_policy(env: Mapping[str, str], base: SharePolicy) -> SharePolicy:
    def seconds(name: str, default: timedelta) -> timedelta:
        raw = env.get(name)
        return default if raw is None else timedelta(seconds=int(raw))

    return SharePolicy(
        issuer=env.get("EID_CREDENTIAL_ISSUER", base.issuer),
        max_ttl=seconds("EID_SHARE_MAX_TTL_SECONDS", base.max_ttl),
        clock_skew=seconds("EID_SHARE_CLOCK_SKEW_SECONDS", base.clock_skew),
    )


def _send_limits(env: Mapping[str, str], base: SendLimits) -> SendLimits:
    """EID_REGISTER_PER_SOURCE_PER_HOUR, EID_REGISTER_PER_PHONE_PER_DAY,
    EID_CODE_REQUESTS_PER_SOURCE_PER_HOUR, EID_OTP_PER_PARTY_CITIZEN_PER_MINUTE
    and EID_OTP_PER_CITIZEN_PER_DAY change the defaults' counts."""

    def count(name: str, limit: Limit) -> Limit:
        raw = env.get(name)
        if raw is None:
            return limit
        hits = int(raw)
        if hits < 1:
            raise ValueError(f"{name} must be at least 1")
        return replace(limit, hits=hits)

    return replace(
        base,
        register_per_source=count("EID_REGISTER_PER_SOURCE_PER_HOUR", base.register_per_source),
        register_per_phone=count("EID_REGISTER_PER_PHONE_PER_DAY", base.register_per_phone),
        code_per_source=count("EID_CODE_REQUESTS_PER_SOURCE_PER_HOUR", base.code_per_source),
        otp_per_party_citizen=count(
            "EID_OTP_PER_PARTY_CITIZEN_PER_MINUTE", base.otp_per_party_citizen
        ),
        otp_per_citizen=count("EID_OTP_PER_CITIZEN_PER_DAY", base.otp_per_citizen),
    )
