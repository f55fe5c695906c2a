"""Request builders of the relying party's Verify modes and of the citizen's
access history, shared by the sync and async clients (see ``_requests`` for
the others and the common helpers)."""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from eid.v1 import identity_service_pb2 as pb
from eid_client._requests import iso_date, new_request_id, parse_gender
from eid_client.biometrics import (
    PORTRAIT_DIMENSIONS,
    Finger,
    Template,
    fingerprint_pb,
    pack_template,
)

SCOPES = {
    "basic": pb.SCOPE_BASIC,
    "id_number": pb.SCOPE_ID_NUMBER,
    "contact": pb.SCOPE_CONTACT,
    "biometric_match": pb.SCOPE_BIOMETRIC_MATCH,
    "documents.driving_licence": pb.SCOPE_DOCUMENTS_DRIVING_LICENCE,
    "documents.vehicle_registration": pb.SCOPE_DOCUMENTS_VEHICLE_REGISTRATION,
    "documents.health_insurance": pb.SCOPE_DOCUMENTS_HEALTH_INSURANCE,
    "documents.social_insurance": pb.SCOPE_DOCUMENTS_SOCIAL_INSURANCE,
    "documents.tax_code": pb.SCOPE_DOCUMENTS_TAX_CODE,
}

# The server's default PARTIAL name threshold, also the lowest it accepts
# (a party may ask for a closer match, never a looser one).
MIN_NAME_THRESHOLD = 80

# A scope name or the enum number, or several of them.
Scopes = Iterable[str | int] | str


def parse_scope(value: str | int) -> pb.Scope.ValueType:
    """Accept ``"basic"``/``"id_number"``/``"contact"``/``"documents.tax_code"``...,
    ``"SCOPE_BASIC"``/``"SCOPE_DOCUMENTS_TAX_CODE"`` or the enum number."""
    if isinstance(value, int):
        if value not in SCOPES.values():
            raise ValueError(f"unknown scope value {value}")
        return pb.Scope.ValueType(value)
    name = value.strip().lower().removeprefix("scope_")
    if name.startswith("documents_"):  # the enum's spelling of documents.*
        name = "documents." + name.removeprefix("documents_")
    try:
        return SCOPES[name]
    except KeyError:
        raise ValueError(f"unknown scope {value!r}: use one of {', '.join(SCOPES)}") from None


def parse_scopes(values: Scopes) -> list[pb.Scope.ValueType]:
    """The scopes asked for, in order, each once; none means all the party may read."""
    if isinstance(values, str):  # one name, not its letters
        values = [values]
    return list(dict.fromkeys(parse_scope(v) for v in values))


def verify_password_request(
    *, personal_id: str, password: str, request_id: str | None, requested_scopes: Scopes = ()
) -> pb.VerifyRequest:
    return pb.VerifyRequest(
        password=pb.PasswordCredential(personal_id=personal_id, password=password),
        request_id=new_request_id(request_id),
        requested_scopes=parse_scopes(requested_scopes),
    )


def redeem_share_request(
    token: str, request_id: str | None, requested_scopes: Scopes = ()
) -> pb.VerifyRequest:
    return pb.VerifyRequest(
        qr_share=pb.QrShareCredential(token=token),
        request_id=new_request_id(request_id),
        requested_scopes=parse_scopes(requested_scopes),
    )


def one_time_code_request(
    *, personal_id: str, code: str, request_id: str | None, requested_scopes: Scopes
) -> pb.VerifyRequest:
    if not code:
        raise ValueError("pass the code= the citizen received after request_otp()")
    return pb.VerifyRequest(
        one_time_code=pb.OneTimeCodeCredential(personal_id=personal_id, code=code),
        request_id=new_request_id(request_id),
        requested_scopes=parse_scopes(requested_scopes),
    )


def demographic_request(
    *,
    personal_id: str,
    full_name: str | None,
    birth_date: datetime.date | str | None,
    gender: str | int | None,
    partial: bool,
    threshold: int | None,
    request_id: str | None,
) -> pb.VerifyRequest:
    """Only what is given is claimed; ``threshold`` (80-100, server default 80)
    is the lowest PARTIAL name score that matches."""
    if not full_name and not birth_date and gender is None:
        raise ValueError("claim at least one of full_name=, birth_date= or gender=")
    if threshold is not None and not MIN_NAME_THRESHOLD <= threshold <= 100:
        raise ValueError(
            f"threshold= is a name score from {MIN_NAME_THRESHOLD} to 100"
            " (a looser match is refused)"
        )
    if threshold is not None and not partial:
        raise ValueError("threshold= goes with partial=True (an EXACT name has no score)")
    if threshold is not None and not full_name:
        raise ValueError("threshold= scores a claimed full_name=: pass one")
    claim = pb.DemographicCredential(
        personal_id=personal_id,
        full_name=full_name or "",
        name_match=pb.NAME_MATCH_STRATEGY_PARTIAL if partial else pb.NAME_MATCH_STRATEGY_EXACT,
        name_threshold=threshold or 0,
        birth_date=iso_date(birth_date) if birth_date else "",
        gender=parse_gender(gender) if gender is not None else pb.GENDER_UNSPECIFIED,
    )
    return pb.VerifyRequest(demographic=claim, request_id=new_request_id(request_id))


def biometric_request(
    *,
    personal_id: str,
    portrait: Template,
    fingerprint: tuple[Finger, Template] | None,
    request_id: str | None,
    requested_scopes: Scopes,
) -> pb.VerifyRequest:
    credential = pb.BiometricCredential(
        personal_id=personal_id, portrait=pack_template(portrait, PORTRAIT_DIMENSIONS)
    )
    if fingerprint is not None:
        credential.fingerprint.CopyFrom(fingerprint_pb(*fingerprint))
    return pb.VerifyRequest(
        biometric=credential,
        request_id=new_request_id(request_id),
        requested_scopes=parse_scopes(requested_scopes),
    )


def request_otp_request(personal_id: str, request_id: str | None) -> pb.RequestOtpRequest:
    return pb.RequestOtpRequest(request_id=new_request_id(request_id), personal_id=personal_id)


def list_access_history_request(
    page_size: int, page_token: str, dependant_account_id: str = ""
) -> pb.ListAccessHistoryRequest:
    if page_size < 0:
        raise ValueError("page_size must be 0 (the server default) or more")
    return pb.ListAccessHistoryRequest(
        page_size=page_size, page_token=page_token, dependant_account_id=dependant_account_id
    )
