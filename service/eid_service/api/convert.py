"""Translation between eid.v1 messages and domain values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from eid.v1 import identity_service_pb2 as pb
from eid_service.domain.account import Account, AccountLevel, AccountState
from eid_service.domain.activation import CodePurpose
from eid_service.domain.citizen import Gender
from eid_service.domain.errors import InvalidInput
from eid_service.domain.linked_document import LinkedDocument
from eid_service.domain.registry_person import DocumentType
from eid_service.domain.share import Attribute
from eid_service.use_cases.ports import IssuedTokens
from eid_service.use_cases.register import Registered
from eid_service.use_cases.sessions import SessionPage
from eid_service.use_cases.sign_in import SignedIn

GENDER_FROM_PB = {pb.GENDER_MALE: Gender.MALE, pb.GENDER_FEMALE: Gender.FEMALE}
GENDER_TO_PB = {v: k for k, v in GENDER_FROM_PB.items()}
LEVEL_TO_PB = {AccountLevel.LEVEL_1: pb.ACCOUNT_LEVEL_1, AccountLevel.LEVEL_2: pb.ACCOUNT_LEVEL_2}
STATE_TO_PB = {
    AccountState.PENDING: pb.ACCOUNT_STATE_PENDING,
    AccountState.ACTIVE: pb.ACCOUNT_STATE_ACTIVE,
    AccountState.LOCKED: pb.ACCOUNT_STATE_LOCKED,
    AccountState.DEACTIVATED: pb.ACCOUNT_STATE_DEACTIVATED,
    AccountState.DEPENDANT: pb.ACCOUNT_STATE_DEPENDANT,
}
ATTRIBUTE_FROM_PB = {
    pb.ATTRIBUTE_PERSONAL_ID: Attribute.PERSONAL_ID,
    pb.ATTRIBUTE_FULL_NAME: Attribute.FULL_NAME,
    pb.ATTRIBUTE_BIRTH_DATE: Attribute.BIRTH_DATE,
    pb.ATTRIBUTE_GENDER: Attribute.GENDER,
    pb.ATTRIBUTE_PHONE_NUMBER: Attribute.PHONE_NUMBER,
    pb.ATTRIBUTE_EMAIL: Attribute.EMAIL,
    pb.ATTRIBUTE_NATIONALITY: Attribute.NATIONALITY,
    pb.ATTRIBUTE_DRIVING_LICENCE: Attribute.DRIVING_LICENCE,
    pb.ATTRIBUTE_VEHICLE_REGISTRATION: Attribute.VEHICLE_REGISTRATION,
    pb.ATTRIBUTE_HEALTH_INSURANCE: Attribute.HEALTH_INSURANCE,
    pb.ATTRIBUTE_SOCIAL_INSURANCE: Attribute.SOCIAL_INSURANCE,
    pb.ATTRIBUTE_TAX_CODE: Attribute.TAX_CODE,
}
DOCUMENT_TYPE_FROM_PB = {
    pb.DOCUMENT_TYPE_DRIVING_LICENCE: DocumentType.DRIVING_LICENCE,
    pb.DOCUMENT_TYPE_VEHICLE_REGISTRATION: DocumentType.VEHICLE_REGISTRATION,
    pb.DOCUMENT_TYPE_HEALTH_INSURANCE: DocumentType.HEALTH_INSURANCE,
    pb.DOCUMENT_TYPE_SOCIAL_INSURANCE: DocumentType.SOCIAL_INSURANCE,
    pb.DOCUMENT_TYPE_TAX_CODE: DocumentType.TAX_CODE,
}
DOCUMENT_TYPE_TO_PB = {v: k for k, v in DOCUMENT_TYPE_FROM_PB.items()}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp(value: datetime) -> Timestamp:
    """`value` as a Timestamp (as Timestamp.FromDatetime makes it, a third of
    its cost: every Verify answer carries one)."""
    if value.tzinfo is None:  # naive: FromDatetime's reading of it (UTC)
        ts = Timestamp()
        ts.FromDatetime(value)
        return ts
    since = value - _EPOCH
    return Timestamp(seconds=since.days * 86_400 + since.seconds, nanos=since.microseconds * 1000)


CHANNEL_TO_PB = {"sms": pb.DELIVERY_CHANNEL_SMS, "email": pb.DELIVERY_CHANNEL_EMAIL}
IMAGE_FORMATS = {
    pb.QR_IMAGE_FORMAT_UNSPECIFIED: "none",
    pb.QR_IMAGE_FORMAT_NONE: "none",
    pb.QR_IMAGE_FORMAT_PNG: "png",
    pb.QR_IMAGE_FORMAT_SVG: "svg",
}
# google.protobuf.Duration's own bounds (about 10,000 years).
_MAX_DURATION_SECONDS = 315_576_000_000


def share_ttl(message: pb.ShareViaQRRequest) -> timedelta | None:
    """The requested lifetime; InvalidInput for a Duration no clock can hold."""
    if not message.HasField("ttl"):
        return None
    ttl: Duration = message.ttl
    valid = (
        abs(ttl.seconds) <= _MAX_DURATION_SECONDS
        and abs(ttl.nanos) < 1_000_000_000
        and (ttl.seconds == 0 or ttl.nanos == 0 or (ttl.seconds > 0) == (ttl.nanos > 0))
    )
    try:
        if valid:
            return ttl.ToTimedelta()
    except (OverflowError, ValueError):
        pass
    raise InvalidInput.of(
        "ttl",
        "SHARE_TTL_OUT_OF_RANGE",
        "the share lifetime must be between 30 seconds and 24 hours",
    )


def image_format(message: pb.ShareViaQRRequest) -> str:
    found = IMAGE_FORMATS.get(message.image_format)
    if found is None:
        raise InvalidInput.of(
            "image_format", "IMAGE_FORMAT_UNKNOWN", "image_format must be NONE, PNG or SVG"
        )
    return found


def account_pb(account: Account) -> pb.Account:
    out = pb.Account(
        account_id=account.id,
        level=LEVEL_TO_PB[account.level],
        state=STATE_TO_PB[account.state],
        create_time=timestamp(account.created_at),
    )
    if account.activated_at is not None:
        out.activate_time.CopyFrom(timestamp(account.activated_at))
    return out


def registered_pb(done: Registered) -> pb.RegisterResponse:
    return pb.RegisterResponse(
        account=account_pb(done.account),
        delivery=delivery_pb(done.channel, done.masked_destination, done.code_expires_at),
        personal_id=done.account.demographics.personal_id,
    )


def document_type(value: int) -> DocumentType | None:
    """The domain's type; None for UNSPECIFIED or a value this server does not know."""
    found: DocumentType | None = DOCUMENT_TYPE_FROM_PB.get(value)  # type: ignore[call-overload]
    return found


def linked_document_pb(document: LinkedDocument) -> pb.LinkedDocument:
    until = document.valid_until
    return pb.LinkedDocument(
        type=DOCUMENT_TYPE_TO_PB[document.doc_type],
        number=document.number,
        issuer=document.issuer,
        valid_from=document.valid_from.isoformat(),
        valid_until="" if until is None else until.isoformat(),
        link_time=timestamp(document.linked_at),
    )


def fill_documents(attrs: pb.CitizenAttributes, documents: tuple[LinkedDocument, ...]) -> None:
    """The released documents, by type (as the store lists them)."""
    if documents:  # extending with nothing would still mark `attrs` as set
        attrs.documents.extend(linked_document_pb(d) for d in documents)


def fill_attributes(attrs: pb.CitizenAttributes, released: dict[Attribute, str]) -> None:
    for attribute, value in released.items():
        if attribute is Attribute.PERSONAL_ID:
            attrs.personal_id = value
        elif attribute is Attribute.FULL_NAME:
            attrs.full_name = value
        elif attribute is Attribute.BIRTH_DATE:
            attrs.birth_date = value
        elif attribute is Attribute.GENDER:
            attrs.gender = GENDER_TO_PB[Gender(value)]
        elif attribute is Attribute.PHONE_NUMBER:
            attrs.phone_number = value
        elif attribute is Attribute.EMAIL:
            attrs.email = value
        elif attribute is Attribute.NATIONALITY:
            attrs.nationality = value


def delivery_pb(
    channel: str, masked_destination: str, expires_at: datetime
) -> pb.ActivationDelivery:
    return pb.ActivationDelivery(
        channel=CHANNEL_TO_PB[channel],
        masked_destination=masked_destination,
        expire_time=timestamp(expires_at),
    )


def signed_in_pb(done: SignedIn) -> pb.SignInResponse:
    t = done.tokens
    return pb.SignInResponse(
        session_token=t.access_token,
        expire_time=timestamp(t.access_expires_at),
        account=account_pb(done.account),
        refresh_token=t.refresh_token,
        refresh_expire_time=timestamp(t.refresh_expires_at),
        session_id=t.session_id,
    )


def refreshed_pb(t: IssuedTokens) -> pb.RefreshSessionResponse:
    return pb.RefreshSessionResponse(
        session_token=t.access_token,
        expire_time=timestamp(t.access_expires_at),
        refresh_token=t.refresh_token,
        refresh_expire_time=timestamp(t.refresh_expires_at),
        session_id=t.session_id,
    )


def session_page_pb(page: SessionPage) -> pb.ListSessionsResponse:
    return pb.ListSessionsResponse(
        sessions=[
            pb.Session(
                session_id=s.id,
                device_name=s.device,
                create_time=timestamp(s.created_at),
                last_use_time=timestamp(s.last_used_at),
                expire_time=timestamp(s.expires_at),
                current=s.id == page.current_session_id,
            )
            for s in page.sessions
        ],
        next_page_token=page.next_page_token,
    )


CODE_PURPOSE_FROM_PB = {
    pb.ACCOUNT_CODE_PURPOSE_LOCK: CodePurpose.LOCK,
    pb.ACCOUNT_CODE_PURPOSE_UNLOCK: CodePurpose.UNLOCK,
}


def code_purpose(value: int) -> CodePurpose:
    found: CodePurpose | None = CODE_PURPOSE_FROM_PB.get(value)  # type: ignore[call-overload]
    if found is None:
        raise InvalidInput.of("purpose", "PURPOSE_UNSPECIFIED", "purpose must be LOCK or UNLOCK")
    return found
