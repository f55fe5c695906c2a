"""SQLAlchemy 2.0 tables. Personal data is stored only encrypted (FieldCipher)
and looked up through keyed blind indexes; secrets only as keyed digests."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Named constraints keep Alembic migrations deterministic and droppable.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class RegistryCitizenRow(Base):
    """The national population registry (a demo copy loaded by `load-demo`)."""

    __tablename__ = "registry_citizens"

    personal_id_index: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    personal_id_enc: Mapped[bytes] = mapped_column(LargeBinary)
    full_name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    birth_date_enc: Mapped[bytes] = mapped_column(LargeBinary)
    # Gender, sealed; `gender` holds it in clear only in rows written before
    # revision 0020 (`rotate-keys` seals those and sets it NULL).
    gender_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    gender: Mapped[str | None] = mapped_column(String(8))
    # Set (encrypted) once the registry records the citizen's death.
    death_date_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    # "citizen" or "foreigner" (found by passport too; see domain/registry_person.py).
    kind: Mapped[str] = mapped_column(String(12), server_default="citizen")
    # The encryption key of this row's blobs (NULL: written before keys were
    # tracked per row); `rotate-keys` finds the rows to re-encrypt by it.
    key_id: Mapped[str | None] = mapped_column(String(64))
    # Foreigners: blind index of nationality + passport number, and the sealed passport.
    passport_index: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    passport_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The enrolled portrait and fingerprint templates, sealed.
    portrait_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    fingerprints_enc: Mapped[bytes | None] = mapped_column(LargeBinary)

    # An index, not a constraint: SQLite cannot add a constraint to a table in place.
    __table_args__ = (Index("uq_registry_citizens_passport_index", "passport_index", unique=True),)


class RegistryGuardianRow(Base):
    """A child's parent or guardian as the registry records them (by blind index)."""

    __tablename__ = "registry_guardians"

    child_index: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    guardian_index: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True, index=True)


class RegistryDocumentRow(Base):
    """A document an issuing registry recorded for a person; the number is found
    by blind index and sealed with the rest of the record."""

    __tablename__ = "registry_documents"

    doc_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    number_index: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    holder_index: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    record_enc: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str | None] = mapped_column(String(64))


class AccountRow(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    personal_id_index: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    personal_id_enc: Mapped[bytes] = mapped_column(LargeBinary)
    full_name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    birth_date_enc: Mapped[bytes] = mapped_column(LargeBinary)
    # Gender, sealed; in clear in `gender` only in rows written before revision
    # 0020 (`rotate-keys` seals those and sets it NULL).
    gender_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    gender: Mapped[str | None] = mapped_column(String(8))
    phone_enc: Mapped[bytes] = mapped_column(LargeBinary)
    email_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    level: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the account became DEACTIVATED (the registry recorded a death).
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A foreigner's nationality (sealed); NULL for citizens.
    nationality_enc: Mapped[bytes | None] = mapped_column(LargeBinary)

    # A dependant's (domain/dependant.py): the guardian's account, kept after
    # the take-over as a record of who managed it; a keyed index of the day the
    # child turns 14 (no date in clear); when the guardian was told of it; when
    # the child completed the take-over.
    guardian_account_id: Mapped[str | None] = mapped_column(String(40), index=True)
    take_over_index: Mapped[bytes | None] = mapped_column(LargeBinary(32), index=True)
    of_age_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    taken_over_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AccountBiometricsRow(Base):
    """The portrait and fingerprint templates an officer captured for a
    level-2 account (RegisterLevel2, UpgradeToLevel2), sealed in one blob;
    biometric Verify compares with them. `key_id`: the key that sealed it."""

    __tablename__ = "account_biometrics"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    templates_enc: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(64))
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AccountDocumentRow(Base):
    """A document linked to a level-2 account (LinkDocument,
    LinkDocumentForCitizen): the registry's keyed index of its number, its
    record sealed as the registry had it when linked, `key_id` the key that
    sealed it, and who linked it ("citizen" or the officer's id). One link
    per account, type and number: the primary key."""

    __tablename__ = "account_documents"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    doc_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    number_index: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    record_enc: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(64))
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    linked_by: Mapped[str] = mapped_column(String(40))


class VerifyModeLockRow(Base):
    """A citizen's lock on one Verify mode (domain/mode_locks.py); no row: unlocked.
    Read with the account in the credential look-up of every Verify."""

    __tablename__ = "verify_mode_locks"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    mode: Mapped[str] = mapped_column(String(16), primary_key=True)
    locked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # A temporary unlock: usable until then, locked again from then on.
    unlocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ActivationCodeRow(Base):
    """One-time codes sent to an account's phone: to activate it, and to lock
    or unlock it (`purpose`). Only the newest code of a purpose counts."""

    __tablename__ = "activation_codes"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(16), server_default="activation")
    code_digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A verification code works only for the relying party that asked for it.
    party_id: Mapped[str | None] = mapped_column(String(40))


class RelyingPartyRow(Base):
    """A relying party. Deletion is soft (`disabled_at`): audit events and
    shares name the party, so its row stays."""

    __tablename__ = "relying_parties"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    api_key_digest: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    # Comma-separated Attribute values the party may read, and Grant values
    # (biometric_match) it holds.
    scopes: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # "active" or "suspended" (every call refused until resumed).
    status: Mapped[str] = mapped_column(String(16), server_default="active")
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The party's business contact (not a citizen's data).
    contact: Mapped[str] = mapped_column(String(200), server_default="")
    # Comma-separated VerifyMode values the party may use (none if left out).
    modes: Mapped[str] = mapped_column(String(100), server_default="")
    rate_per_minute: Mapped[int] = mapped_column(Integer, server_default="600")
    citizen_rate_per_minute: Mapped[int] = mapped_column(Integer, server_default="10")
    # The key before the last rotation, working until previous_key_expires_at.
    previous_api_key_digest: Mapped[bytes | None] = mapped_column(
        LargeBinary(32), unique=True, index=True
    )
    previous_key_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # SHA-256 of the DER client certificate the party must call with (mutual
    # TLS); NULL: its API key alone.
    client_cert_sha256: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    # When a rotation made the current key; NULL: made when the party was
    # created (or before this column existed).
    key_rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PartyFailureRow(Base):
    """Failed verifications of a party per one-minute window, spread over a few
    shard rows so that concurrent failures do not queue on one hot row."""

    __tablename__ = "party_failures"

    party_id: Mapped[str] = mapped_column(ForeignKey("relying_parties.id"), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    shard: Mapped[int] = mapped_column(Integer, primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)


class CredentialAttemptRow(Base):
    """Password attempts per (subject, source); source "*" is the subject's
    total across sources (see domain/credential_policy.py)."""

    __tablename__ = "credential_attempts"

    subject: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    source: Mapped[str] = mapped_column(String(80), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class SessionRow(Base):
    """A signed-in device. Its access token (short-lived) and refresh token
    (rotated on every use) are stored only as keyed digests; a refresh token
    used twice ends the session (see SpentRefreshTokenRow)."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    access_digest: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    access_expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    refresh_digest: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    refresh_expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    # The device name the citizen's app gave at sign-in (encrypted: it may name them).
    device_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_reason: Mapped[str | None] = mapped_column(String(24))


class SpentRefreshTokenRow(Base):
    """Refresh tokens already exchanged: presenting one again means two holders
    (a stolen token), so the session is revoked."""

    __tablename__ = "spent_refresh_tokens"

    digest: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    spent_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RateCounterRow(Base):
    """Hits per key (a keyed digest: a source address, a phone, an ID number)
    per fixed window, shared by every server process."""

    __tablename__ = "rate_counters"

    key: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    hits: Mapped[int] = mapped_column(Integer)


class TokenBucketRow(Base):
    """Relying parties' token buckets (domain/party_limits.py), one per party
    and per (party, citizen) by keyed digest, shared by every server process.
    Times are epoch seconds, which both databases do arithmetic on alike."""

    __tablename__ = "token_buckets"

    key: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    tokens: Mapped[float] = mapped_column(Double())
    refilled_at: Mapped[float] = mapped_column(Double(), index=True)
    capacity: Mapped[float] = mapped_column(Double())
    per_second: Mapped[float] = mapped_column(Double())


class OfficerRow(Base):
    """Registration officers (the police counter), created by an operator;
    after checking the citizen in person they may register level 2 and
    unlock accounts, as their roles allow."""

    __tablename__ = "officers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    key_digest: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Comma-separated OfficerRole values: registration (level 2), unlock.
    roles: Mapped[str] = mapped_column(String(64), server_default="unlock")


class ShareRow(Base):
    __tablename__ = "shares"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    attributes: Mapped[str] = mapped_column(String(200))
    audience_party_id: Mapped[str | None] = mapped_column(ForeignKey("relying_parties.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    redeemed_by: Mapped[str | None] = mapped_column(ForeignKey("relying_parties.id"))
    # Set by RevokeShare, or when the account is locked: no longer redeemable.
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # "online" (the QR holds a reference) or "offline" (a signed credential).
    mode: Mapped[str] = mapped_column(String(8), server_default="online")
    # Redeemable until expiry, not only once.
    multi_use: Mapped[bool] = mapped_column(Boolean, server_default="0")
    redeem_count: Mapped[int] = mapped_column(Integer, server_default="0")
    last_redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The guardian's account when a guardian made it for a dependant (the
    # share's account_id is the child's).
    issued_by: Mapped[str | None] = mapped_column(String(40), index=True)


class ApprovalRequestRow(Base):
    """A relying party's request for the citizen's approval on their device
    (domain/approval.py). Only a keyed digest of the QR token is kept; the
    verification code and the party's note are sealed."""

    __tablename__ = "approval_requests"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    party_id: Mapped[str] = mapped_column(ForeignKey("relying_parties.id"))
    # Whom it is shown to: NULL for an ID number with no active account (shown
    # to nobody) and for a QR request nobody has claimed yet.
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    # The person's blind index, for their audit chain (NULL until known).
    subject: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    token_digest: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True)
    attributes: Mapped[str] = mapped_column(String(200))
    code_enc: Mapped[bytes] = mapped_column(LargeBinary)
    message_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    # pending, approved, declined or voided (too many wrong codes).
    state: Mapped[str] = mapped_column(String(16))
    code_attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the party's Verify took the outcome (once).
    collected_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SigningKeyRow(Base):
    """Ed25519 keys that sign share payloads; the private half encrypted with
    the field cipher. `is_current` is TRUE for the one key that signs and NULL
    for the others, so a unique constraint allows exactly one current key even
    when two processes create the first key at once."""

    __tablename__ = "signing_keys"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    private_key_enc: Mapped[bytes] = mapped_column(LargeBinary)
    is_current: Mapped[bool | None] = mapped_column(Boolean, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OutboxRow(Base):
    """Messages to citizens, written in the same transaction as the change
    that caused them and delivered afterwards. Contents are encrypted and
    erased once settled (see OutboxDeliveryRow). `routed_at`: when its
    deliveries were made; `sent_at`: when the last of them settled.
    `party_id`: the party a status event is for, in clear so a dispatcher
    can pick deliveries without taking more than a few of one party's at
    once (NULL for citizens' messages)."""

    __tablename__ = "outbox"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str | None] = mapped_column(String(32))
    destination_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    body_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    routed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    party_id: Mapped[str | None] = mapped_column(String(40))


class OutboxDeliveryRow(Base):
    """One sender's delivery of one message: pending (due at
    `next_attempt_at`, which a claim pushes forward), sent or dead.
    `last_error` is an error class, never message contents."""

    __tablename__ = "outbox_deliveries"
    __table_args__ = (Index("ix_outbox_deliveries_due", "state", "next_attempt_at"),)

    message_id: Mapped[str] = mapped_column(String(40), ForeignKey("outbox.id"), primary_key=True)
    sender: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[str] = mapped_column(String(8))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(120))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class IdempotencyRow(Base):
    """The first response to each client-chosen request_id, per scope (the RPC
    and the caller: a party, a citizen, or anonymous)."""

    __tablename__ = "idempotency_records"

    scope: Mapped[str] = mapped_column(String(80), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary(32))
    response_enc: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class AuditChainRow(Base):
    """The head of each subject's audit chain, so an append reads no event."""

    __tablename__ = "audit_chains"

    subject: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    head: Mapped[bytes | None] = mapped_column(LargeBinary(32))


class AuditEventRow(Base):
    """Append-only access history. Each event of a subject (the person an ID
    number names) chains the digest of the previous one, so a removed or
    edited event is detectable."""

    __tablename__ = "audit_events"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject: Mapped[bytes] = mapped_column(LargeBinary(32))
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"))
    party_id: Mapped[str | None] = mapped_column(ForeignKey("relying_parties.id"))
    # Who acted when it was not the citizen or a party (an officer's id).
    actor: Mapped[str | None] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    seq: Mapped[int] = mapped_column(Integer)
    prev_digest: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    # A stable reason for an outcome that is not a success, and the call's
    # request id and W3C trace id (events from before migration 0011 have none).
    reason: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    trace_id: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        Index("ix_audit_events_subject_seq", "subject", "seq", unique=True),
        # A citizen's access history, newest first.
        Index("ix_audit_events_account_id_created_at", "account_id", "created_at"),
    )


class VerificationReceiptRow(Base):
    """The signed receipt of a successful verification (its audit event's id)
    and the names of the attributes released, for the citizen's history."""

    __tablename__ = "verification_receipts"

    id: Mapped[str] = mapped_column(ForeignKey("audit_events.id"), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    party_id: Mapped[str] = mapped_column(ForeignKey("relying_parties.id"))
    attributes: Mapped[str] = mapped_column(String(200))
    receipt: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        # The parties that verified an account (who hears of its status changes).
        Index("ix_verification_receipts_account_id_party_id", "account_id", "party_id"),
    )


class PartyWebhookRow(Base):
    """Where a relying party's status events go: its webhook URL, sealed (it
    may carry the party's own token)."""

    __tablename__ = "party_webhooks"

    party_id: Mapped[str] = mapped_column(ForeignKey("relying_parties.id"), primary_key=True)
    url_enc: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
