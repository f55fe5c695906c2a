"""The citizen's Verify-mode locks on :class:`~eid_client.EidClient`
(:class:`ModeLockCalls`) and :class:`~eid_client.AsyncEidClient`
(:class:`AsyncModeLockCalls`): lock a mode, unlock it for good or for a few
minutes, and read them. A locked mode's Verify fails with AUTH_MODE_LOCKED
for a party that proved the credential; RequestOtp sends no code."""

from __future__ import annotations

import datetime
from typing import TypeVar

import grpc
from google.protobuf import duration_pb2
from google.protobuf.message import Message
from grpc import aio

from eid.v1 import identity_service_pb2 as pb
from eid.v1 import identity_service_pb2_grpc as pb_grpc
from eid_client import _requests as req
from eid_client._base import Credentials

_Req = TypeVar("_Req", bound=Message)
_Resp = TypeVar("_Resp", bound=Message)

# The modes a citizen can lock (QR shares are their own act, revoked instead).
LOCKABLE_MODES = {
    "password": pb.VERIFICATION_METHOD_PASSWORD,
    "one_time_code": pb.VERIFICATION_METHOD_ONE_TIME_CODE,
    "approval": pb.VERIFICATION_METHOD_APPROVAL,
    "demographic": pb.VERIFICATION_METHOD_DEMOGRAPHIC,
    "biometric": pb.VERIFICATION_METHOD_BIOMETRIC,
}
_ALIASES = {"otp": "one_time_code", "one-time-code": "one_time_code"}


def parse_lockable_mode(value: str | int) -> pb.VerificationMethod.ValueType:
    """Accept ``"one_time_code"`` (or ``"otp"``), ``"VERIFICATION_METHOD_PASSWORD"``
    or the enum number; the server refuses modes it cannot lock."""
    if isinstance(value, int):
        return pb.VerificationMethod.ValueType(value)
    name = value.strip().lower().removeprefix("verification_method_")
    name = _ALIASES.get(name, name)
    try:
        return LOCKABLE_MODES[name]
    except KeyError:
        raise ValueError(
            f"unknown or unlockable mode {value!r}: use {', '.join(LOCKABLE_MODES)}"
        ) from None


def lock_request(mode: str | int, request_id: str | None) -> pb.LockVerifyModeRequest:
    return pb.LockVerifyModeRequest(
        request_id=req.new_request_id(request_id), mode=parse_lockable_mode(mode)
    )


def unlock_request(
    mode: str | int, minutes: float | None, request_id: str | None
) -> pb.UnlockVerifyModeRequest:
    request = pb.UnlockVerifyModeRequest(
        request_id=req.new_request_id(request_id), mode=parse_lockable_mode(mode)
    )
    if minutes is not None:
        duration = duration_pb2.Duration()
        duration.FromTimedelta(datetime.timedelta(minutes=minutes))
        request.unlock_for.CopyFrom(duration)
    return request


class ModeLockCalls(Credentials):
    """Mixed into :class:`~eid_client.EidClient`, which supplies ``_stub`` and ``_call``."""

    _stub: pb_grpc.IdentityServiceStub

    def _call(
        self,
        method: grpc.UnaryUnaryMultiCallable[_Req, _Resp],
        request: _Req,
        metadata: req.Metadata = (),
    ) -> _Resp:
        raise NotImplementedError  # pragma: no cover - EidClient defines it

    def lock_verify_mode(
        self, mode: str | int, *, request_id: str | None = None, session_token: str | None = None
    ) -> pb.LockVerifyModeResponse:
        """Citizen: lock one Verify mode (``"password"``, ``"one_time_code"``,
        ``"approval"``, ``"demographic"``). The answer lists every lockable mode."""
        request = lock_request(mode, request_id)
        return self._call(self._stub.LockVerifyMode, request, self._session(session_token))

    def unlock_verify_mode(
        self,
        mode: str | int,
        *,
        minutes: float | None = None,
        request_id: str | None = None,
        session_token: str | None = None,
    ) -> pb.UnlockVerifyModeResponse:
        """Citizen: unlock one Verify mode for good, or with ``minutes`` (1 to
        1440) for that long, after which it is locked again."""
        request = unlock_request(mode, minutes, request_id)
        return self._call(self._stub.UnlockVerifyMode, request, self._session(session_token))

    def verify_mode_locks(self, session_token: str | None = None) -> list[pb.VerifyModeLock]:
        """Citizen: every lockable mode, locked or not (``relock_time`` while
        temporarily unlocked)."""
        response = self._call(
            self._stub.GetVerifyModeLocks,
            pb.GetVerifyModeLocksRequest(),
            self._session(session_token),
        )
        return list(response.modes)


class AsyncModeLockCalls(Credentials):
    """Mixed into :class:`~eid_client.AsyncEidClient`, which supplies ``_stub`` and ``_call``."""

    _stub: pb_grpc.IdentityServiceAsyncStub

    async def _call(
        self,
        method: aio.UnaryUnaryMultiCallable[_Req, _Resp],
        request: _Req,
        metadata: req.Metadata = (),
    ) -> _Resp:
        raise NotImplementedError  # pragma: no cover - AsyncEidClient defines it

    async def lock_verify_mode(
        self, mode: str | int, *, request_id: str | None = None, session_token: str | None = None
    ) -> pb.LockVerifyModeResponse:
        """See :meth:`eid_client.EidClient.lock_verify_mode`."""
        request = lock_request(mode, request_id)
        return await self._call(self._stub.LockVerifyMode, request, self._session(session_token))

    async def unlock_verify_mode(
        self,
        mode: str | int,
        *,
        minutes: float | None = None,
        request_id: str | None = None,
        session_token: str | None = None,
    ) -> pb.UnlockVerifyModeResponse:
        """See :meth:`eid_client.EidClient.unlock_verify_mode`."""
        request = unlock_request(mode, minutes, request_id)
        return await self._call(self._stub.UnlockVerifyMode, request, self._session(session_token))

    async def verify_mode_locks(self, session_token: str | None = None) -> list[pb.VerifyModeLock]:
        """See :meth:`eid_client.EidClient.verify_mode_locks`."""
        response = await self._call(
            self._stub.GetVerifyModeLocks,
            pb.GetVerifyModeLocksRequest(),
            self._session(session_token),
        )
        return list(response.modes)
