"""eid.v1.IdentityService, the citizen's locks on single Verify modes: lock,
unlock (for good or for a while) and read them. Translation only, as in
identity_servicer.py."""

from __future__ import annotations

from datetime import timedelta

from google.protobuf.duration_pb2 import Duration

from eid.v1 import identity_service_pb2 as pb
from eid_service.api import convert, metadata
from eid_service.api.servicer_base import Context, M, ServicerBase
from eid_service.domain.errors import InvalidInput
from eid_service.domain.mode_locks import MAX_TEMPORARY_UNLOCK, ModeState, temporary_unlock
from eid_service.domain.party import VerifyMode
from eid_service.use_cases.mode_locks import ModeLockChange, change_mode_lock, verify_mode_locks
from eid_service.use_cases.replies import Reply

MODE_FROM_PB = {
    pb.VERIFICATION_METHOD_PASSWORD: VerifyMode.PASSWORD,
    pb.VERIFICATION_METHOD_ONE_TIME_CODE: VerifyMode.ONE_TIME_CODE,
    pb.VERIFICATION_METHOD_APPROVAL: VerifyMode.APPROVAL,
    pb.VERIFICATION_METHOD_DEMOGRAPHIC: VerifyMode.DEMOGRAPHIC,
    pb.VERIFICATION_METHOD_QR_SHARE: VerifyMode.QR_SHARE,
    pb.VERIFICATION_METHOD_BIOMETRIC: VerifyMode.BIOMETRIC,
}
MODE_TO_PB = {mode: value for value, mode in MODE_FROM_PB.items()}


def _mode(value: int) -> VerifyMode | None:
    found: VerifyMode | None = MODE_FROM_PB.get(value)  # type: ignore[call-overload]
    return found


def _unlock_for(request: pb.UnlockVerifyModeRequest) -> timedelta | None:
    """The temporary unlock's length; None when unset (unlocked for good)."""
    if not request.HasField("unlock_for"):
        return None
    d: Duration = request.unlock_for
    # Beyond the range (or malformed) is refused alike, before any conversion can overflow.
    if 0 <= d.seconds <= MAX_TEMPORARY_UNLOCK.total_seconds() and 0 <= d.nanos < 1_000_000_000:
        return temporary_unlock(d.ToTimedelta())
    raise InvalidInput.of(
        "unlock_for",
        "UNLOCK_DURATION_OUT_OF_RANGE",
        "a temporary unlock lasts from 1 minute to 24 hours",
    )


def mode_locks_pb(states: list[ModeState]) -> list[pb.VerifyModeLock]:
    out = []
    for state in states:
        lock = pb.VerifyModeLock(mode=MODE_TO_PB[state.mode], locked=state.locked)
        if state.relocks_at is not None:
            lock.relock_time.CopyFrom(convert.timestamp(state.relocks_at))
        out.append(lock)
    return out


class ModeLockRpcs(ServicerBase):
    async def LockVerifyMode(
        self, request: pb.LockVerifyModeRequest, context: Context
    ) -> pb.LockVerifyModeResponse:
        change = ModeLockChange(_mode(request.mode))
        return await self._change(
            "lock_verify_mode",
            request,
            request.request_id,
            change,
            context,
            pb.LockVerifyModeResponse,
        )

    async def UnlockVerifyMode(
        self, request: pb.UnlockVerifyModeRequest, context: Context
    ) -> pb.UnlockVerifyModeResponse:
        change = ModeLockChange(_mode(request.mode), unlock=True, unlock_for=_unlock_for(request))
        return await self._change(
            "unlock_verify_mode",
            request,
            request.request_id,
            change,
            context,
            pb.UnlockVerifyModeResponse,
        )

    async def GetVerifyModeLocks(
        self, request: pb.GetVerifyModeLocksRequest, context: Context
    ) -> pb.GetVerifyModeLocksResponse:
        states = await verify_mode_locks(self._uow, self._ctx, metadata.bearer_token(context))
        return pb.GetVerifyModeLocksResponse(modes=mode_locks_pb(states))

    async def _change(
        self,
        rpc: str,
        request: pb.LockVerifyModeRequest | pb.UnlockVerifyModeRequest,
        request_id: str,
        change: ModeLockChange,
        context: Context,
        response_type: type[M],
    ) -> M:
        reply: Reply[list[ModeState], M] = self._reply(
            rpc,
            request,
            request_id,
            response_type,
            lambda states: response_type(modes=mode_locks_pb(states)),
        )
        return await change_mode_lock(
            self._uow, self._ctx, metadata.bearer_token(context), change, reply
        )
