"""Request and metadata builders shared by the sync and async clients.

Keeping them here means both clients send byte-identical requests, and the
friendly argument forms ("male", "full_name", dates, timedeltas) are parsed in
one place. Verify's requests (every mode) and the access history's are built
in ``_verify_requests``.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from google.protobuf import duration_pb2

from eid.v1 import identity_service_pb2 as pb

API_KEY_HEADER = "x-api-key"
AUTHORIZATION_HEADER = "authorization"
OFFICER_KEY_HEADER = "x-officer-key"

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


def officer_metadata(officer_key: str | None) -> Metadata:
    if not officer_key:
        raise ValueError(
            "this call is made by a registration officer: create the client with "
            "officer_key= or pass officer_key="
        )
    return ((OFFICER_KEY_HEADER, officer_key),)


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


ATTRIBUTE_NAMES = (
    "personal_id",
    "full_name",
    "birth_date",
    "gender",
    "phone_number",
    "email",
    "nationality",
    "driving_licence",
    "vehicle_registration",
    "health_insurance",
    "social_insurance",
    "tax_code",
)

DOCUMENT_TYPE_NAMES = (
    "driving_licence",
    "vehicle_registration",
    "health_insurance",
    "social_insurance",
    "tax_code",
)


def parse_document_type(value: str | int) -> pb.DocumentType.ValueType:
    """Accept ``"driving_licence"``, ``"DOCUMENT_TYPE_TAX_CODE"`` or the enum number."""
    if isinstance(value, int):
        if value not in pb.DocumentType.values() or value == pb.DOCUMENT_TYPE_UNSPECIFIED:
            raise ValueError(f"unknown document type value {value}")
        return pb.DocumentType.ValueType(value)
    name = value.strip().upper().replace("-", "_")
    name = name if name.startswith("DOCUMENT_TYPE_") else f"DOCUMENT_TYPE_{name}"
    if name not in pb.DocumentType.DESCRIPTOR.values_by_name or name.endswith("_UNSPECIFIED"):
        raise ValueError(
            f"unknown document type {value!r}: use one of {', '.join(DOCUMENT_TYPE_NAMES)}"
        )
    return pb.DocumentType.Value(name)


_DocumentRequest = TypeVar("_DocumentRequest", pb.LinkDocumentRequest, pb.UnlinkDocumentRequest)


def document_request(
    kind: type[_DocumentRequest], document_type: str | int, number: str, request_id: str | None
) -> _DocumentRequest:
    """LinkDocument's or UnlinkDocument's request: a document by type and number."""
    return kind(
        request_id=new_request_id(request_id),
        type=parse_document_type(document_type),
        number=number,
    )


def list_linked_documents_request(page_size: int, page_token: str) -> pb.ListLinkedDocumentsRequest:
    if page_size < 0:
        raise ValueError("page_size must be 0 (the server default) or more")
    return pb.ListLinkedDocumentsRequest(page_size=page_size, page_token=page_token)


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


@dataclass(frozen=True)
class Passport:
    """A foreigner's passport, declared at :meth:`~eid_client.EidClient.register`
    instead of an ID number: ``number`` as printed, ``nationality`` as ISO
    3166-1 alpha-3 (``"KOR"``), the date and place of issue."""

    number: str = field(repr=False)
    nationality: str
    issue_date: datetime.date | str = field(repr=False)
    issue_place: str = field(repr=False)

    def to_pb(self) -> pb.Passport:
        return pb.Passport(
            number=self.number,
            nationality=self.nationality,
            issue_date=iso_date(self.issue_date),
            issue_place=self.issue_place,
        )


def register_request(
    *,
    personal_id: str,
    full_name: str,
    birth_date: datetime.date | str,
    gender: str | int,
    phone_number: str,
    email: str,
    portrait: bytes,
    passport: Passport | pb.Passport | None,
    request_id: str | None,
) -> pb.RegisterRequest:
    request = pb.RegisterRequest(
        request_id=new_request_id(request_id),
        personal_id=personal_id,
        full_name=full_name,
        birth_date=iso_date(birth_date),
        gender=parse_gender(gender),
        phone_number=phone_number,
        email=email,
        portrait=bytes(portrait),
    )
    if passport is not None:
        request.passport.CopyFrom(passport.to_pb() if isinstance(passport, Passport) else passport)
    return request


def register_dependant_request(
    *,
    personal_id: str,
    full_name: str,
    birth_date: datetime.date | str,
    gender: str | int,
    request_id: str | None,
) -> pb.RegisterDependantRequest:
    return pb.RegisterDependantRequest(
        request_id=new_request_id(request_id),
        personal_id=personal_id,
        full_name=full_name,
        birth_date=iso_date(birth_date),
        gender=parse_gender(gender),
    )


def list_dependants_request(page_size: int, page_token: str) -> pb.ListDependantsRequest:
    if page_size < 0:
        raise ValueError("page_size must be 0 (the server default) or more")
    return pb.ListDependantsRequest(page_size=page_size, page_token=page_token)


def activate_request(
    *, personal_id: str, activation_code: str, new_password: str, request_id: str | None
) -> pb.ActivateRequest:
    return pb.ActivateRequest(
        request_id=new_request_id(request_id),
        personal_id=personal_id,
        activation_code=activation_code,
        new_password=new_password,
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


SHARE_MODES = {"online": pb.SHARE_MODE_ONLINE, "offline": pb.SHARE_MODE_OFFLINE}


def parse_share_mode(value: str | int) -> pb.ShareMode.ValueType:
    """Accept ``"online"``/``"offline"``, ``"SHARE_MODE_OFFLINE"`` or the enum number."""
    if isinstance(value, int):
        if value not in SHARE_MODES.values():
            raise ValueError(f"unknown share mode value {value}")
        return pb.ShareMode.ValueType(value)
    name = value.strip().lower().removeprefix("share_mode_")
    try:
        return SHARE_MODES[name]
    except KeyError:
        raise ValueError(f"unknown share mode {value!r}: use 'online' or 'offline'") from None


def share_request(
    *,
    attributes: Iterable[str | int],
    audience_party_id: str,
    ttl: datetime.timedelta | None,
    request_id: str | None,
    image_format: str = "none",
    mode: str | int = "online",
    multi_use: bool = False,
    dependant_account_id: str = "",
) -> pb.ShareViaQRRequest:
    request = pb.ShareViaQRRequest(
        request_id=new_request_id(request_id),
        attributes=[parse_attribute(a) for a in attributes],
        audience_party_id=audience_party_id,
        image_format=parse_image_format(image_format),
        mode=parse_share_mode(mode),
        multi_use=multi_use,
        dependant_account_id=dependant_account_id,
    )
    if ttl is not None:  # unset means the server default (5 minutes)
        duration = duration_pb2.Duration()
        duration.FromTimedelta(ttl)
        request.ttl.CopyFrom(duration)
    return request


def sign_in_request(
    *, personal_id: str, password: str, device_name: str, request_id: str | None = None
) -> pb.SignInRequest:
    # A request id makes a retried sign-in get the first session, not open another.
    return pb.SignInRequest(
        personal_id=personal_id,
        password=password,
        device_name=device_name,
        request_id=new_request_id(request_id),
    )


def _require_contact(phone_number: str, email: str) -> None:
    if not phone_number and not email:
        raise ValueError("pass the registered phone_number= or email=")


def resend_activation_code_request(
    *, personal_id: str, phone_number: str, email: str, request_id: str | None
) -> pb.ResendActivationCodeRequest:
    _require_contact(phone_number, email)
    return pb.ResendActivationCodeRequest(
        request_id=new_request_id(request_id),
        personal_id=personal_id,
        phone_number=phone_number,
        email=email,
    )


CODE_PURPOSES = {
    "lock": pb.ACCOUNT_CODE_PURPOSE_LOCK,
    "unlock": pb.ACCOUNT_CODE_PURPOSE_UNLOCK,
}


def parse_code_purpose(value: str | int) -> pb.AccountCodePurpose.ValueType:
    """Accept ``"lock"``/``"unlock"``, ``"ACCOUNT_CODE_PURPOSE_LOCK"`` or the enum number."""
    if isinstance(value, int):
        if value not in CODE_PURPOSES.values():
            raise ValueError(f"unknown code purpose value {value}")
        return pb.AccountCodePurpose.ValueType(value)
    name = value.strip().lower().removeprefix("account_code_purpose_")
    try:
        return CODE_PURPOSES[name]
    except KeyError:
        raise ValueError(f"unknown code purpose {value!r}: use 'lock' or 'unlock'") from None


def send_account_code_request(
    *,
    purpose: str | int,
    personal_id: str,
    phone_number: str,
    email: str,
    request_id: str | None,
) -> pb.SendAccountCodeRequest:
    _require_contact(phone_number, email)
    return pb.SendAccountCodeRequest(
        request_id=new_request_id(request_id),
        purpose=parse_code_purpose(purpose),
        personal_id=personal_id,
        phone_number=phone_number,
        email=email,
    )


def refresh_session_request(refresh_token: str, request_id: str | None) -> pb.RefreshSessionRequest:
    return pb.RefreshSessionRequest(
        request_id=new_request_id(request_id), refresh_token=refresh_token
    )


def sign_out_request(request_id: str | None) -> pb.SignOutRequest:
    return pb.SignOutRequest(request_id=new_request_id(request_id))


def list_sessions_request(page_size: int, page_token: str) -> pb.ListSessionsRequest:
    if page_size < 0:
        raise ValueError("page_size must be 0 (the server default) or more")
    return pb.ListSessionsRequest(page_size=page_size, page_token=page_token)


def revoke_session_request(session_id: str, request_id: str | None) -> pb.RevokeSessionRequest:
    if not session_id:
        raise ValueError("pass the session_id to end, as list_sessions() shows it")
    return pb.RevokeSessionRequest(request_id=new_request_id(request_id), session_id=session_id)


def list_shares_request(
    page_size: int, page_token: str, dependant_account_id: str = ""
) -> pb.ListSharesRequest:
    if page_size < 0:
        raise ValueError("page_size must be 0 (the server default) or more")
    return pb.ListSharesRequest(
        page_size=page_size, page_token=page_token, dependant_account_id=dependant_account_id
    )


def revoke_share_request(
    share_id: str, request_id: str | None, dependant_account_id: str = ""
) -> pb.RevokeShareRequest:
    if not share_id:
        raise ValueError("pass the share_id to revoke, as share_via_qr() or list_shares() gives it")
    return pb.RevokeShareRequest(
        request_id=new_request_id(request_id),
        share_id=share_id,
        dependant_account_id=dependant_account_id,
    )


def lock_account_request(
    *, personal_id: str, password: str, one_time_code: str, request_id: str | None
) -> pb.LockAccountRequest:
    """With ``password`` or ``one_time_code`` (and ``personal_id``); with neither,
    the request proves nothing itself and the session in the metadata does."""
    request = pb.LockAccountRequest(request_id=new_request_id(request_id))
    if password and one_time_code:
        raise ValueError("lock with password= or one_time_code=, not both")
    if (password or one_time_code) and not personal_id:
        raise ValueError("locking with a password or a code needs personal_id=")
    if password:
        request.password.CopyFrom(pb.LockWithPassword(personal_id=personal_id, password=password))
    elif one_time_code:
        request.one_time_code.CopyFrom(
            pb.LockWithCode(personal_id=personal_id, one_time_code=one_time_code)
        )
    elif personal_id:
        # A session locks its own account: an ID number here would be ignored.
        raise ValueError("personal_id= goes with password= or one_time_code=")
    return request


def needs_session(request: pb.LockAccountRequest) -> bool:
    return request.WhichOneof("proof") is None


def unlock_by_officer_request(personal_id: str, request_id: str | None) -> pb.UnlockAccountRequest:
    return pb.UnlockAccountRequest(
        request_id=new_request_id(request_id),
        officer=pb.UnlockByOfficer(personal_id=personal_id),
    )


def unlock_by_citizen_request(
    *, personal_id: str, one_time_code: str, password: str, request_id: str | None
) -> pb.UnlockAccountRequest:
    return pb.UnlockAccountRequest(
        request_id=new_request_id(request_id),
        citizen=pb.UnlockByCitizen(
            personal_id=personal_id, one_time_code=one_time_code, password=password
        ),
    )
