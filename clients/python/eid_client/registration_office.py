"""A registration officer's client: :class:`RegistrationOfficeClient` calls
``eid.v1.RegistrationOfficeService`` (level 2 at the police counter) with the
officer's key in ``x-officer-key``.

Quick start::

    from eid_client.registration_office import RegistrationOfficeClient

    with RegistrationOfficeClient("127.0.0.1:50051", officer_key="eido_...") as office:
        office.register_level2(
            personal_id="001090001234", full_name="Nguyễn Thị Lan",
            birth_date="1990-05-17", gender="female", phone_number="0912345678",
            portrait=face_vector,  # 128 floats (or their 512 bytes)
            fingerprints={"right_index": print_1, "left_index": print_2},  # 64 floats each
        )

The citizen then activates the account in the app with the SMS code
(``EidClient.activate``). Failed calls raise :class:`~eid_client.errors.EidError`;
writes are retried with their request id, as :class:`~eid_client.EidClient`'s are.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from types import TracebackType
from typing import Self, TypeVar

import grpc
from google.protobuf.message import Message

from eid.v1 import registration_office_service_pb2 as pb
from eid.v1 import registration_office_service_pb2_grpc as pb_grpc
from eid_client import _requests as req
from eid_client._base import DEFAULT_TARGET, ChannelOptions
from eid_client._call_settings import DEFAULT_TIMEOUT, CallSettings
from eid_client.biometrics import (
    PORTRAIT_DIMENSIONS,
    Finger,
    Template,
    fingerprints_pb,
    pack_template,
)
from eid_client.retry import RetryPolicy, send_with_retries
from eid_client.tls import Tls, credentials_for

__all__ = ["RegistrationOfficeClient", "capture_pb"]

_Req = TypeVar("_Req", bound=Message)
_Resp = TypeVar("_Resp", bound=Message)


def capture_pb(portrait: Template, fingerprints: Mapping[Finger, Template]) -> pb.BiometricCapture:
    """The counter's capture: a portrait and 2 to 10 fingerprints by finger."""
    return pb.BiometricCapture(
        portrait=pack_template(portrait, PORTRAIT_DIMENSIONS),
        fingerprints=fingerprints_pb(fingerprints),
    )


class RegistrationOfficeClient:
    """Blocking client of the registration office; a context manager. The
    officer needs the ``registration`` role (``eid-server officer create``)."""

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        officer_key: str,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        tls: Tls | bool = False,
        credentials: grpc.ChannelCredentials | None = None,
        options: ChannelOptions | None = None,
    ) -> None:
        self._metadata = req.officer_metadata(officer_key)
        self._settings = CallSettings(timeout, None, retry)
        self.target = target
        secure = credentials_for(tls, credentials)
        opts = list(options or [])
        self._channel = (
            grpc.secure_channel(target, secure, opts)
            if secure is not None
            else grpc.insecure_channel(target, opts)
        )
        self._stub = pb_grpc.RegistrationOfficeServiceStub(self._channel)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _call(self, method: grpc.UnaryUnaryMultiCallable[_Req, _Resp], request: _Req) -> _Resp:
        attempts = self._settings.attempts(request)
        return send_with_retries(
            attempts, lambda t: method(request, timeout=t, metadata=self._metadata)
        )

    def register_level2(
        self,
        *,
        personal_id: str,
        full_name: str,
        birth_date: datetime.date | str,
        gender: str | int,
        phone_number: str,
        portrait: Template,
        fingerprints: Mapping[Finger, Template],
        email: str = "",
        request_id: str | None = None,
    ) -> pb.RegisterLevel2Response:
        """Register a PENDING level-2 account for a citizen checked in person
        (the activation code goes to ``phone_number``)."""
        request = pb.RegisterLevel2Request(
            request_id=req.new_request_id(request_id),
            personal_id=personal_id,
            full_name=full_name,
            birth_date=req.iso_date(birth_date),
            gender=req.parse_gender(gender),
            phone_number=phone_number,
            email=email,
            capture=capture_pb(portrait, fingerprints),
        )
        return self._call(self._stub.RegisterLevel2, request)

    def upgrade_to_level2(
        self,
        *,
        personal_id: str,
        portrait: Template,
        fingerprints: Mapping[Finger, Template],
        request_id: str | None = None,
    ) -> pb.UpgradeToLevel2Response:
        """Raise the citizen's ACTIVE level-1 account to level 2."""
        request = pb.UpgradeToLevel2Request(
            request_id=req.new_request_id(request_id),
            personal_id=personal_id,
            capture=capture_pb(portrait, fingerprints),
        )
        return self._call(self._stub.UpgradeToLevel2, request)

    def link_document_for_citizen(
        self,
        *,
        personal_id: str,
        document_type: str | int,
        number: str,
        request_id: str | None = None,
    ) -> pb.LinkDocumentForCitizenResponse:
        """Link the registry's document of this type (``"driving_licence"``,
        ``"tax_code"``, ...) and number to the citizen's level-2 account."""
        request = pb.LinkDocumentForCitizenRequest(
            request_id=req.new_request_id(request_id),
            personal_id=personal_id,
            type=req.parse_document_type(document_type),
            number=number,
        )
        return self._call(self._stub.LinkDocumentForCitizen, request)
