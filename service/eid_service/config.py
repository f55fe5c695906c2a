"""Settings, read from the environment (prefix EID_) with safe local defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

from eid_service import settings_values as values
from eid_service.domain.biometric_match import MatchThresholds
from eid_service.domain.notices import Language, parse_language
from eid_service.domain.portrait import PortraitPolicy
from eid_service.domain.rate_limits import Limit, OfficerLimits, SendLimits
from eid_service.domain.share import SharePolicy
from eid_service.event_loop import EventLoop
from eid_service.limits import Limits, limits_from_env
from eid_service.notify.settings import (
    DeliverySettings,
    SmtpSettings,
    WebhookSettings,
    delivery_from_env,
    smtp_from_env,
    webhook_from_env,
)
from eid_service.security.tls import TlsSettings, tls_from_env

DEFAULT_LISTEN = "127.0.0.1:50051"
DEFAULT_DATA_DIR = Path("var")


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
    # EID_ENV=production: reflection off unless asked for, no development senders.
    production: bool = False
    reflection: bool = True
    grace_seconds: float = 10.0
    # The server's event loop (event_loop.py): uvloop, or the standard library's.
    event_loop: EventLoop = EventLoop.UVLOOP
    # Streams, message sizes, deadlines, keepalive, concurrency (limits.py).
    limits: Limits = field(default_factory=Limits)
    # Peers whose x-forwarded-for names the real client (load balancers).
    trusted_proxies: frozenset[str] = frozenset()
    # How often expired sessions, shares and request ids are purged.
    purge_interval_seconds: float = 300.0
    # The language of SMS and email texts: "vi" (default) or "en".
    language: Language = Language.VIETNAMESE
    # Limits on Register and on code requests (domain/rate_limits.py).
    send_limits: SendLimits = field(default_factory=SendLimits)
    # Calls per officer key (domain/rate_limits.py).
    officer_limits: OfficerLimits = field(default_factory=OfficerLimits)
    # Real senders (notify/settings.py): email through SMTP, SMS through a
    # signed webhook; and how failed deliveries are retried.
    smtp: SmtpSettings | None = None
    sms_webhook: WebhookSettings | None = None
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    # Offline credentials' issuer, the longest share lifetime, clock skew.
    shares: SharePolicy = field(default_factory=SharePolicy)
    # The level-1 portrait check's cosine-similarity threshold (domain/portrait.py).
    portrait: PortraitPolicy = field(default_factory=PortraitPolicy)
    # TLS on `listen` and, for parties bound to client certificates, mutual
    # TLS on a port of its own (security/tls.py); None: plaintext.
    tls: TlsSettings | None = None
    # Plaintext on an address other than loopback (behind a proxy that
    # terminates TLS): refused at start unless this is set.
    allow_insecure: bool = False
    # Level 2 at the counter and biometric Verify: the cosine similarity a
    # portrait and a fingerprint must reach (EID_FACE_MATCH_THRESHOLD,
    # EID_FINGERPRINT_MATCH_THRESHOLD).
    biometric_thresholds: MatchThresholds = field(default_factory=MatchThresholds)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Raises SettingError, naming the variable, for a value it cannot use."""
        env = os.environ if env is None else env
        base = cls()
        production = _environment(env)
        outbox = env.get("EID_OUTBOX_FILE", "").strip()
        console_sender = values.flag(env, "EID_CONSOLE_SENDER", False)
        if production and (outbox or console_sender):
            dev = "EID_OUTBOX_FILE" if outbox else "EID_CONSOLE_SENDER"
            raise values.SettingError(
                dev, "is a development sender (it shows one-time codes): not in production"
            )
        return cls(
            listen=values.listen_address(env, "EID_LISTEN", base.listen),
            database_url=values.database_url(env, "EID_DATABASE_URL", base.database_url),
            keys_file=Path(env.get("EID_KEYS_FILE", "").strip() or base.keys_file),
            workers=values.integer(env, "EID_WORKERS", base.workers, minimum=1),
            outbox_file=Path(outbox) if outbox else None,
            console_sender=console_sender,
            production=production,
            # Reflection describes every RPC to anyone: a production server keeps it
            # unless told otherwise.
            reflection=values.flag(env, "EID_REFLECTION", not production),
            grace_seconds=values.number(env, "EID_GRACE_SECONDS", base.grace_seconds),
            event_loop=_event_loop(env, base.event_loop),
            limits=limits_from_env(env),
            trusted_proxies=values.ip_addresses(env, "EID_TRUSTED_PROXIES"),
            purge_interval_seconds=values.number(
                env, "EID_PURGE_INTERVAL_SECONDS", base.purge_interval_seconds, above=True
            ),
            language=_language(env, base.language),
            send_limits=_send_limits(env, base.send_limits),
            officer_limits=_officer_limits(env, base.officer_limits),
            smtp=smtp_from_env(env),
            sms_webhook=webhook_from_env(env),
            delivery=delivery_from_env(env),
            shares=_share_policy(env, base.shares),
            portrait=_portrait_policy(env, base.portrait),
            tls=tls_from_env(env),
            allow_insecure=values.flag(env, "EID_ALLOW_INSECURE", False),
            biometric_thresholds=_biometric_thresholds(env, base.biometric_thresholds),
        )


def _environment(env: Mapping[str, str]) -> bool:
    """EID_ENV: development (the default) or production; True for production."""
    kind = env.get("EID_ENV", "").strip().lower() or "development"
    if kind not in {"development", "production"}:
        raise values.SettingError("EID_ENV", f"must be development or production, not {kind!r}")
    return kind == "production"


def _event_loop(env: Mapping[str, str], default: EventLoop) -> EventLoop:
    """EID_EVENT_LOOP: uvloop (the default) or asyncio."""
    raw = env.get("EID_EVENT_LOOP", "").strip().lower() or default.value
    try:
        return EventLoop(raw)
    except ValueError:
        kinds = " or ".join(kind.value for kind in EventLoop)
        raise values.SettingError("EID_EVENT_LOOP", f"must be {kinds}, not {raw!r}") from None


def _language(env: Mapping[str, str], default: Language) -> Language:
    try:
        return parse_language(env.get("EID_LANGUAGE", default.value))
    except ValueError as bad:
        raise values.SettingError("EID_LANGUAGE", f"is not usable: {bad}") from None


def _biometric_thresholds(env: Mapping[str, str], base: MatchThresholds) -> MatchThresholds:
    """EID_FACE_MATCH_THRESHOLD and EID_FINGERPRINT_MATCH_THRESHOLD: more than 0, at most 1."""

    def threshold(name: str, default: float) -> float:
        value = values.number(env, name, default, above=True)
        if value > 1:
            raise values.SettingError(name, f"must be at most 1 (a cosine similarity), not {value}")
        return value

    return MatchThresholds(
        face=threshold("EID_FACE_MATCH_THRESHOLD", base.face),
        fingerprint=threshold("EID_FINGERPRINT_MATCH_THRESHOLD", base.fingerprint),
    )


def _share_policy(env: Mapping[str, str], base: SharePolicy) -> SharePolicy:
    def seconds(name: str, default: timedelta) -> timedelta:
        if not env.get(name, "").strip():
            return default
        return timedelta(seconds=values.integer(env, name, 0))

    return SharePolicy(
        issuer=env.get("EID_CREDENTIAL_ISSUER", base.issuer),
        max_ttl=seconds("EID_SHARE_MAX_TTL_SECONDS", base.max_ttl),
        clock_skew=seconds("EID_SHARE_CLOCK_SKEW_SECONDS", base.clock_skew),
    )


def _portrait_policy(env: Mapping[str, str], base: PortraitPolicy) -> PortraitPolicy:
    """EID_PORTRAIT_MATCH_THRESHOLD: the cosine similarity a level-1 capture
    needs with the enrolled portrait (0.30 to below 1; default 0.60)."""
    name = "EID_PORTRAIT_MATCH_THRESHOLD"
    threshold = values.number(env, name, base.threshold)
    try:
        return PortraitPolicy(threshold)
    except ValueError as bad:
        raise values.SettingError(name, f"is not usable: {bad}") from None


def _officer_limits(env: Mapping[str, str], base: OfficerLimits) -> OfficerLimits:
    """EID_OFFICER_CALLS_PER_HOUR and EID_OFFICER_CALLS_PER_DAY change the defaults' counts."""
    per_hour = values.integer(env, "EID_OFFICER_CALLS_PER_HOUR", base.per_hour.hits, minimum=1)
    per_day = values.integer(env, "EID_OFFICER_CALLS_PER_DAY", base.per_day.hits, minimum=1)
    return OfficerLimits(replace(base.per_hour, hits=per_hour), replace(base.per_day, hits=per_day))


def _send_limits(env: Mapping[str, str], base: SendLimits) -> SendLimits:
    """EID_REGISTER_PER_SOURCE_PER_HOUR, EID_REGISTER_PER_PHONE_PER_DAY,
    EID_CODE_REQUESTS_PER_SOURCE_PER_HOUR, EID_OTP_PER_PARTY_CITIZEN_PER_MINUTE,
    EID_OTP_PER_PARTY_CITIZEN_PER_DAY and EID_OTP_PER_CITIZEN_PER_DAY change the
    defaults' counts."""

    def count(name: str, limit: Limit) -> Limit:
        return replace(limit, hits=values.integer(env, name, limit.hits, minimum=1))

    return replace(
        base,
        register_per_source=count("EID_REGISTER_PER_SOURCE_PER_HOUR", base.register_per_source),
        register_per_phone=count("EID_REGISTER_PER_PHONE_PER_DAY", base.register_per_phone),
        code_per_source=count("EID_CODE_REQUESTS_PER_SOURCE_PER_HOUR", base.code_per_source),
        otp_per_party_citizen=count(
            "EID_OTP_PER_PARTY_CITIZEN_PER_MINUTE", base.otp_per_party_citizen
        ),
        otp_per_party_citizen_day=count(
            "EID_OTP_PER_PARTY_CITIZEN_PER_DAY", base.otp_per_party_citizen_day
        ),
        otp_per_citizen=count("EID_OTP_PER_CITIZEN_PER_DAY", base.otp_per_citizen),
    )
