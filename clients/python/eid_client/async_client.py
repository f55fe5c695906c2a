"""The asyncio client, :class:`AsyncEidClient`: :class:`~eid_client.EidClient`'s
methods and arguments as coroutines over ``grpc.aio``. Requests are built by the
same functions (``_requests``, ``_verify_requests``), so both clients send identical
messages."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Self, TypeVar

import grpc
from google.protobuf.message import Message
from grpc import aio

from eid.v1 import identity_service_pb2 as pb
from eid.v1 import identity_service_pb2_grpc as pb_grpc
from eid_client import _health
from eid_client import _requests as req
from eid_client._approval_calls_async import AsyncApprovalCalls
from eid_client._base import DEFAULT_TARGET, ChannelOptions
from eid_client._call_settings import DEFAULT_TIMEOUT, CallSettings
from eid_client._dependant_calls import AsyncDependantCalls
from eid_client._document_calls import AsyncDocumentCalls
from eid_client._mode_lock_calls import AsyncModeLockCalls
from eid_client._pages import follow_pages_async
from eid_client._share_calls import AsyncShareCalls
from eid_client._verify_calls import AsyncVerifyCalls
from eid_client._webhook_calls import AsyncWebhookCalls
from eid_client.retry import RetryPolicy, send_with_retries_async
from eid_client.tls import Tls, credentials_for

_Req = TypeVar("_Req", bound=Message)
_Resp = TypeVar("_Resp", bound=Message)


class AsyncEidClient(
    AsyncApprovalCalls,
    AsyncDependantCalls,
    AsyncDocumentCalls,
    AsyncModeLockCalls,
    AsyncShareCalls,
    AsyncVerifyCalls,
    AsyncWebhookCalls,
):
    """The same API as :class:`~eid_client.EidClient` over ``grpc.aio``; create it
    inside a running loop."""

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        api_key: str | None = None,
        session_token: str | None = None,
        refresh_token: str | None = None,
        officer_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        timeouts: Mapping[str, float] | None = None,
        retry: RetryPolicy | None = None,
        tls: Tls | bool = False,
        credentials: grpc.ChannelCredentials | None = None,
        options: ChannelOptions | None = None,
    ) -> None:
        self._settings = CallSettings(timeout, timeouts, retry)
        super().__init__(
            api_key=api_key,
            session_token=session_token,
            refresh_token=refresh_token,
            officer_key=officer_key,
            timeout=self._settings.timeout,
        )
        # host:port, which also names the offline-verification key cache.
        self.target = target
        opts = list(options or [])
        secure = credentials_for(tls, credentials)
        self._channel = (
            aio.secure_channel(target, secure, opts)
            if secure is not None
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
        deadline: float | None = None,
    ) -> _Resp:
        attempts = self._settings.attempts(request, deadline)
        return await send_with_retries_async(
            attempts, lambda t: method(request, timeout=t, metadata=metadata)
        )

    async def register(
        self,
        *,
        personal_id: str = "",
        full_name: str,
        birth_date: datetime.date | str,
        gender: str | int,
        phone_number: str,
        email: str = "",
        portrait: bytes,
        passport: req.Passport | pb.Passport | None = None,
        request_id: str | None = None,
    ) -> pb.RegisterResponse:
        """Register a level-1 account; the activation code goes to ``phone_number``.

        A citizen gives ``personal_id``; a foreigner gives ``passport``
        (:class:`~eid_client.Passport`) instead, and signs in afterwards with
        the number the registry assigned them: the answer's ``personal_id``.
        ``portrait`` is the face the app captured, as its feature extractor
        renders it: 128 little-endian float32 values (512 bytes); it is
        compared with the registry's enrolled portrait and never stored."""
        request = req.register_request(
            personal_id=personal_id,
            full_name=full_name,
            birth_date=birth_date,
            gender=gender,
            phone_number=phone_number,
            email=email,
            portrait=portrait,
            passport=passport,
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

    async def sign_in(
        self,
        *,
        personal_id: str,
        password: str,
        device_name: str = "",
        request_id: str | None = None,
    ) -> pb.SignInResponse:
        """Open a citizen session (named ``device_name`` in list_sessions); the
        access and refresh tokens are kept for later citizen calls. A retry
        with the same ``request_id`` gets the same session (one is made per
        call, and kept across the client's own retries)."""
        request = req.sign_in_request(
            personal_id=personal_id,
            password=password,
            device_name=device_name,
            request_id=request_id,
        )
        response = await self._call(self._stub.SignIn, request)
        self._keep(response)
        return response

    async def resend_activation_code(
        self,
        *,
        personal_id: str,
        phone_number: str = "",
        email: str = "",
        request_id: str | None = None,
    ) -> pb.ResendActivationCodeResponse:
        """Send a new activation code for a PENDING account to its registered
        phone or email (the answer is the same whether they match or not)."""
        request = req.resend_activation_code_request(
            personal_id=personal_id, phone_number=phone_number, email=email, request_id=request_id
        )
        return await self._call(self._stub.ResendActivationCode, request)

    async def send_account_code(
        self,
        *,
        purpose: str | int,
        personal_id: str,
        phone_number: str = "",
        email: str = "",
        request_id: str | None = None,
    ) -> pb.SendAccountCodeResponse:
        """Send a one-time code to ``"lock"`` an ACTIVE or ``"unlock"`` a LOCKED account."""
        request = req.send_account_code_request(
            purpose=purpose,
            personal_id=personal_id,
            phone_number=phone_number,
            email=email,
            request_id=request_id,
        )
        return await self._call(self._stub.SendAccountCode, request)

    async def refresh_session(
        self, refresh_token: str | None = None, request_id: str | None = None
    ) -> pb.RefreshSessionResponse:
        """Spend the refresh token (default: the kept one) for new access and
        refresh tokens, which are kept. Retry a lost answer with the same ``request_id``."""
        request = req.refresh_session_request(self._refresh_token(refresh_token), request_id)
        response = await self._call(self._stub.RefreshSession, request)
        self._keep(response)
        return response

    async def sign_out(
        self, request_id: str | None = None, session_token: str | None = None
    ) -> pb.SignOutResponse:
        """End the session (default: the kept one, whose tokens are then forgotten)."""
        metadata = self._session(session_token)
        response = await self._call(self._stub.SignOut, req.sign_out_request(request_id), metadata)
        if self._ends_kept_session(session_token):
            self._forget()
        return response

    async def list_sessions(
        self, page_size: int = 0, page_token: str = "", session_token: str | None = None
    ) -> pb.ListSessionsResponse:
        """One page of the citizen's live sessions, newest first; see :meth:`iter_sessions`."""
        request = req.list_sessions_request(page_size, page_token)
        return await self._call(self._stub.ListSessions, request, self._session(session_token))

    def iter_sessions(
        self, page_size: int = 0, session_token: str | None = None
    ) -> AsyncIterator[pb.Session]:
        """Every live session, following ``next_page_token`` page by page (``async for``)."""
        token = session_token or self.session_token
        self._session(token)  # no session: fail now, not at the first __anext__()

        return follow_pages_async(
            lambda page_token: self.list_sessions(page_size, page_token, token),
            lambda page: page.sessions,
        )

    async def revoke_session(
        self, session_id: str, request_id: str | None = None, session_token: str | None = None
    ) -> pb.RevokeSessionResponse:
        """End one of the citizen's sessions, this one or another device's."""
        request = req.revoke_session_request(session_id, request_id)
        response = await self._call(self._stub.RevokeSession, request, self._session(session_token))
        if self.session_id is not None and session_id == self.session_id:
            self._forget()
        return response

    async def lock_account(
        self,
        *,
        personal_id: str = "",
        password: str = "",
        one_time_code: str = "",
        request_id: str | None = None,
        session_token: str | None = None,
    ) -> pb.LockAccountResponse:
        """Lock the account: with ``personal_id`` and ``password`` or a lock
        ``one_time_code`` (see :meth:`send_account_code`), else with the session
        (whose tokens are then forgotten: locking ends every session)."""
        request = req.lock_account_request(
            personal_id=personal_id,
            password=password,
            one_time_code=one_time_code,
            request_id=request_id,
        )
        by_session = req.needs_session(request)
        metadata = self._session(session_token) if by_session else ()
        response = await self._call(self._stub.LockAccount, request, metadata)
        if by_session and self._ends_kept_session(session_token):
            self._forget()
        return response

    async def unlock_account_by_officer(
        self, *, personal_id: str, officer_key: str | None = None, request_id: str | None = None
    ) -> pb.UnlockAccountResponse:
        """Registration officer: unlock after checking the citizen in person
        (the key from the constructor's ``officer_key=`` or this call's)."""
        request = req.unlock_by_officer_request(personal_id, request_id)
        return await self._call(self._stub.UnlockAccount, request, self._officer(officer_key))

    async def unlock_account(
        self, *, personal_id: str, one_time_code: str, password: str, request_id: str | None = None
    ) -> pb.UnlockAccountResponse:
        """Citizen: unlock with an unlock code (see :meth:`send_account_code`) and the password."""
        request = req.unlock_by_citizen_request(
            personal_id=personal_id,
            one_time_code=one_time_code,
            password=password,
            request_id=request_id,
        )
        return await self._call(self._stub.UnlockAccount, request)

    async def health(self, service: str = "") -> str:
        """The ``grpc.health.v1`` status name, e.g. ``"SERVING"``."""
        check = self._channel.unary_unary(_health.HEALTH_CHECK_METHOD, None, None)
        body = _health.encode_request(service)
        attempts = self._settings.attempts(None)
        raw: bytes = await send_with_retries_async(attempts, lambda t: check(body, timeout=t))
        return _health.decode_status(raw)
