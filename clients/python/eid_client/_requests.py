"""Request and metadata builders shared by the sync and async clients.

Keeping them here means both clients send byte-identical requests, and the
friendly argument forms ("male", "full_name", dates, timedeltas) are parsed in
one place.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable

from google.protobuf import duration_pb2

from eid.v1 import identity_service_pb2 as pb

API_KEY_HEADER = "x-api-key"
AUTHORIZATION_HEADER = "authorization"

Metadata = tuple[tuple[str, str], ...]


def new_request_id(request_id: str | None) -> str:
    """The caller's idempotency key, or a fresh one; reuse it when retrying a call."""
    return request_id if request_id else str(uuid.uuid4())


def api_key_metadata(api_key: str | None) -> Metadata:
    if not api_key:
        raise ValueError("this call is made by a relying party: create the client with api_key=")
    return ((API_KEY_HEADER, api_key),)


def session_metadata(session_token: str | None) -> Metadata:
    if not session_token:
        raise ValueError(
            "this call needs a citizen session: call sign_in() first or pass session_token="
        )
    return ((AUTHORIZATION_HEADER, f"Bearer {session_token}"),)


def parse_gender(value: str | int) -> pb.Gender.ValueType:
    """Accept ``"male"``/``"female"``, ``"GENDER_MALE"`` or the enum number."""
    if isinstance(value, int):
        if value not in pb.Gender.values() or value == pb.GENDER_UNSPECIFIED:
            raise ValueError(f"unknown gender value {value}")
        return pb.Gender.ValueType(value)
    name = value.strip().upper()
    name = name if name.startswith("GENDER_") else f"GENDER_{name}"
    if name not in pb.Gender.DESCRIPTOR.values_by_name or name == "GENDER_UNSPECIFIED":
        raise ValueError(f"unknown gender {value!r}: use 'male' or 'female'")
    return pb.Gender.Value(name)


ATTRIBUTE_NAMES = ("personal_id", "full_name", "birth_date", "gender")


def parse_attribute(value: str | int) -> pb.Attribute.ValueType:
    """Accept ``"full_name"``, ``"ATTRIBUTE_FULL_NAME"`` or the enum number."""
    if isinstance(value, int):
        if value not in pb.Attribute.values() or value == pb.ATTRIBUTE_UNSPECIFIED:
            raise ValueError(f"unknown attribute value {value}")
        return pb.Attribute.ValueType(value)
    name = value.strip().upper()
    name = name if name.startswith("ATTRIBUTE_") else f"ATTRIBUTE_{name}"
    if name not in pb.Attribute.DESCRIPTOR.values_by_name or name == "ATTRIBUTE_UNSPECIFIED":
        raise ValueError(f"unknown attribute {value!r}: use one of {', '.join(ATTRIBUTE_NAMES)}")
    return pb.Attribute.Value(name)


def iso_date(value: datetime.date | str) -> str:
    # datetime is a date subclass; its isoformat() would carry a time the server rejects.
    if isinstance(value, datetime.datetime):
        return value.date().isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def register_request(
    *,
    personal_id: str,
    full_name: str,
    birth_date: datetime.date | str,
    gender: str | int,
    phone_number: str,
    email: str,
    request_id: str | None,
) -> pb.RegisterRequest:
    return pb.RegisterRequest(
        request_id=new_request_id(request_id),
        personal_id=personal_id,
        full_name=full_name,
        birth_date=iso_date(birth_date),
        gender=parse_gender(gender),
        phone_number=phone_number,
        email=email,
    )


def activate_request(
    *, personal_id: str, activation_code: str, new_password: str, request_id: str | None
) -> pb.ActivateRequest:
    return pb.ActivateRequest(
        request_id=new_request_id(request_id),
        personal_id=personal_id,
        activation_code=activation_code,
        new_password=new_password,
    )


def verify_password_request(
    *, personal_id: str, password: str, request_id: str | None
) -> pb.VerifyRequest:
    return pb.VerifyRequest(
        password=pb.PasswordCredential(personal_id=personal_id, password=password),
        request_id=new_request_id(request_id),
    )


def redeem_share_request(token: str, request_id: str | None) -> pb.VerifyRequest:
    return pb.VerifyRequest(
        qr_share=pb.QrShareCredential(token=token), request_id=new_request_id(request_id)
    )


IMAGE_FORMATS = {
    "none": pb.QR_IMAGE_FORMAT_NONE,
    "png": pb.QR_IMAGE_FORMAT_PNG,
    "svg": pb.QR_IMAGE_FORMAT_SVG,
}


def parse_image_format(value: str) -> pb.QrImageFormat.ValueType:
    try:
        return IMAGE_FORMATS[value.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown image format {value!r}: use none, png or svg") from None


def share_request(
    *,
    attributes: Iterable[str | int],
    audience_party_id: str,
    ttl: datetime.timedelta | None,
    request_id: str | None,
    image_format: str = "none",
) -> pb.ShareViaQRRequest:
    request = pb.ShareViaQRRequest(
        request_id=new_request_id(request_id),
        attributes=[parse_attribute(a) for a in attributes],
        audience_party_id=audience_party_id,
        image_format=parse_image_format(image_format),
    )
    if ttl is not None:  # unset means the server default (5 minutes)
        duration = duration_pb2.Duration()
        duration.FromTimedelta(ttl)
        request.ttl.CopyFrom(duration)
    return request
