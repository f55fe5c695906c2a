"""Typed clients for eid: :class:`EidClient` (blocking) and :class:`AsyncEidClient` (grpc.aio).

Both expose the same methods with the same arguments; every failed call raises
:class:`~eid_client.errors.EidError`. Relying-party calls send the ``x-api-key``
header, citizen calls send ``authorization: Bearer <session token>``.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import grpc
from google.protobuf.message import Message
from grpc import aio

from eid.v1 import identity_service_pb2 as pb
from eid.v1 import identity_service_pb2_grpc as pb_grpc
from eid_client import _health
from eid_client import _requests as req
from eid_client.errors import error_from_rpc_error

DEFAULT_TARGET = "127.0.0.1:50051"

_Req = TypeVar("_Req", bound=Message)
_Resp = TypeVar("_Resp", bound=Message)
ChannelOptions = Sequence[tuple[str, Any]]


class _Credentials:
    """What both clients keep between calls: who is calling, and the call deadline."""

    def __init__(self, api_key: str | None, session_token: str | None, timeout: float) -> None:
        self.api_key = api_key
        # Set by sign_in(); may also be given up front to reuse a session.
        self.session_token = session_token
        self.timeout = timeout

    def _session(self, override: str | None) -> req.Metadata:
        return req.session_metadata(override or self.session_token)


class EidClient(_Credentials):
    """Blocking client over a ``grpc.Channel``. Use as a context manager or call :meth:`close`."""

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        api_key: str | None = None,
        session_token: str | None = None,
        timeout: float = 10.0,
        credentials: grpc.ChannelCredentials | None = None,
        options: ChannelOptions | None = None,
    ) -> None:
        super().__init__(api_key, session_token, timeout)
        opts = list(options or [])
        self._channel = (
            grpc.secure_channel(target, credentials, opts)
            if credentials is not None
            else grpc.insecure_channel(target, opts)
        )
        self._stub = pb_grpc.IdentityServiceStub(self._channel)

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

    def _call(
        self,
        method: grpc.UnaryUnaryMultiCallable[_Req, _Resp],
        request: _Req,
        metadata: req.Metadata = (),
    ) -> _Resp:
        try:
            return method(request, timeout=self.timeout, metadata=metadata)
        except grpc.RpcError as e:
            raise error_from_rpc_error(e) from e

    def register(
        self,
        *,
        personal_id: str,
        full_name: str,
        birth_date: datetime.date | str,
        gender: str | int,
        phone_number: str,
        email: str = "",
        request_id: str | None = None,
    ) -> pb.RegisterResponse:
        """Register a level-1 account; the activation code goes to ``phone_number``."""
        request = req.register_request(
            personal_id=personal_id,
            full_name=full_name,
            birth_date=birth_date,
            gender=gender,
            phone_number=phone_number,
            email=email,
            request_id=request_id,
        )
        return self._call(self._stub.Register, request)

    def activate(
        self,
        *,
        personal_id: str,
        activation_code: str,
        new_password: str,
        request_id: str | None = None,
    ) -> pb.ActivateResponse:
        """Activate a PENDING account with the code it was sent, setting its password."""
        request = req.activate_request(
            personal_id=personal_id,
            activation_code=activation_code,
            new_password=new_password,
            request_id=request_id,
        )
        return self._call(self._stub.Activate, request)

    def sign_in(self, *, personal_id: str, password: str) -> pb.SignInResponse:
        """Open a citizen session; the token is kept for later citizen calls."""
        request = pb.SignInRequest(personal_id=personal_id, password=password)
        response = self._call(self._stub.SignIn, request)
        self.session_token = response.session_token
        return response

    def verify_password(
        self, *, personal_id: str, password: str, request_id: str | None = None
    ) -> pb.VerifyResponse:
        """Relying party: check a citizen's ID number and password. Retry a
        lost answer with the same ``request_id`` to get the same verdict."""
        request = req.verify_password_request(
            personal_id=personal_id, password=password, request_id=request_id
        )
        return self._call(self._stub.Verify, request, req.api_key_metadata(self.api_key))

    def redeem_share(self, token: str, request_id: str | None = None) -> pb.VerifyResponse:
        """Relying party: redeem a scanned QR share token (once). Retry a lost
        answer with the same ``request_id`` to get the same attributes again."""
        request = req.redeem_share_request(token, request_id)
        return self._call(self._stub.Verify, request, req.api_key_metadata(self.api_key))

    def share_via_qr(
        self,
        *,
        attributes: Iterable[str | int],
        audience_party_id: str = "",
        ttl: datetime.timedelta | None = None,
        request_id: str | None = None,
        session_token: str | None = None,
        image_format: str = "none",
    ) -> pb.ShareViaQRResponse:
        """Citizen: share the chosen attributes as a signed, expiring QR token;
        ``image_format="png"`` or ``"svg"`` also returns the QR image."""
        request = req.share_request(
            attributes=attributes,
            audience_party_id=audience_party_id,
            ttl=ttl,
            request_id=request_id,
            image_format=image_format,
        )
        return self._call(self._stub.ShareViaQR, request, self._session(session_token))

    def health(self, service: str = "") -> str:
        """The ``grpc.health.v1`` status name, e.g. ``"SERVING"``."""
        check = self._channel.unary_unary(_health.HEALTH_CHECK_METHOD, None, None)
        try:
            raw: bytes = check(_health.encode_request(service), timeout=self.timeout)
        except grpc.RpcError as e:
            raise error_from_rpc_error(e) from e
        return _health.decode_status(raw)


class AsyncEidClient(_Credentials):
    """The same API as :class:`EidClient` over ``grpc.aio``; create it inside a running loop."""

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        api_key: str | None = None,
        session_token: str | None = None,
        timeout: float = 10.0,
        credentials: grpc.ChannelCredentials | None = None,
        options: ChannelOptions | None = None,
    ) -> None:
        super().__init__(api_key, session_token, timeout)
        opts = list(options or [])
        self._channel = (
            aio.secure_channel(target, credentials, opts)
            if credentials is not None
            else aio.insecure_channel(target, opts)
        )
        self._stub = pb_grpc.IdentityServiceStub(self._channel)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close(None)

    async def _call(
        self,
        method: aio.UnaryUnaryMultiCallable[_Req, _Resp],
        request: _Req,
        metadata: req.Metadata = (),
    ) -> _Resp:
        try:
            return await method(request, timeout=self.timeout, metadata=metadata)
        except grpc.RpcError as e:
            raise error_from_rpc_error(e) from e

    async def register(
        self,
        *,
        personal_id: str,
        full_name: str,
        birth_date: datetime.date | str,
        gender: str | int,
        phone_number: str,
        email: str = "",
        request_id: str | None = None,
    ) -> pb.RegisterResponse:
        """Register a level-1 account; the activation code goes to ``phone_number``."""
        request = req.register_request(
            personal_id=personal_id,
            full_name=full_name,
            birth_date=birth_date,
            gender=gender,
            phone_number=phone_number,
            email=email,
            request_id=request_id,
        )
        return await self._call(self._stub.Register, request)

    async def activate(
        self,
        *,
        personal_id: str,
        activation_code: str,
        new_password: str,
        request_id: str | None = None,
    ) -> pb.ActivateResponse:
        """Activate a PENDING account with the code it was sent, setting its password."""
        request = req.activate_request(
            personal_id=personal_id,
            activation_code=activation_code,
            new_password=new_password,
            request_id=request_id,
        )
        return await self._call(self._stub.Activate, request)

    async def sign_in(self, *, personal_id: str, password: str) -> pb.SignInResponse:
        """Open a citizen session; the token is kept for later citizen calls."""
        request = pb.SignInRequest(personal_id=personal_id, password=password)
        response = await self._call(self._stub.SignIn, request)
        self.session_token = response.session_token
        return response

    async def verify_password(
        self, *, personal_id: str, password: str, request_id: str | None = None
    ) -> pb.VerifyResponse:
        """Relying party: check a citizen's ID number and password. Retry a
        lost answer with the same ``request_id`` to get the same verdict."""
        request = req.verify_password_request(
            personal_id=personal_id, password=password, request_id=request_id
        )
        return await self._call(self._stub.Verify, request, req.api_key_metadata(self.api_key))

    async def redeem_share(self, token: str, request_id: str | None = None) -> pb.VerifyResponse:
        """Relying party: redeem a scanned QR share token (once). Retry a lost
        answer with the same ``request_id`` to get the same attributes again."""
        request = req.redeem_share_request(token, request_id)
        return await self._call(self._stub.Verify, request, req.api_key_metadata(self.api_key))

    async def share_via_qr(
        self,
        *,
        attributes: Iterable[str | int],
        audience_party_id: str = "",
        ttl: datetime.timedelta | None = None,
        request_id: str | None = None,
        session_token: str | None = None,
        image_format: str = "none",
    ) -> pb.ShareViaQRResponse:
        """Citizen: share the chosen attributes as a signed, expiring QR token;
        ``image_format="png"`` or ``"svg"`` also returns the QR image."""
        request = req.share_request(
            attributes=attributes,
            audience_party_id=audience_party_id,
            ttl=ttl,
            request_id=request_id,
            image_format=image_format,
        )
        return await self._call(self._stub.ShareViaQR, request, self._session(session_token))

    async def health(self, service: str = "") -> str:
        """The ``grpc.health.v1`` status name, e.g. ``"SERVING"``."""
        check = self._channel.unary_unary(_health.HEALTH_CHECK_METHOD, None, None)
        try:
            raw: bytes = await check(_health.encode_request(service), timeout=self.timeout)
        except grpc.RpcError as e:
            raise error_from_rpc_error(e) from e
        return _health.decode_status(raw)
