"""eid.v1.IdentityService, the account's life: resend and account codes,
sessions (refresh, sign out, list, revoke), lock and unlock. Translation
only, as in identity_servicer.py."""

from __future__ import annotations

from collections.abc import Callable

from eid.v1 import identity_service_pb2 as pb
from eid_service.api import convert, metadata
from eid_service.api.servicer_base import Context, M, ServicerBase
from eid_service.domain.activation import CodePurpose
from eid_service.domain.errors import InvalidInput
from eid_service.use_cases.lock import (
    LockCommand,
    LockProof,
    StateChange,
    lock_account,
    unlock_by_citizen,
    unlock_by_officer,
)
from eid_service.use_cases.one_time_codes import CodeRequest, CodeSent, request_code
from eid_service.use_cases.sessions import (
    list_sessions,
    refresh_session,
    revoke_session,
    sign_out,
)


def _resent_pb(sent: CodeSent) -> pb.ResendActivationCodeResponse:
    delivery = convert.delivery_pb(sent.channel, sent.masked_destination, sent.expires_at)
    return pb.ResendActivationCodeResponse(delivery=delivery)


def _account_code_pb(sent: CodeSent) -> pb.SendAccountCodeResponse:
    delivery = convert.delivery_pb(sent.channel, sent.masked_destination, sent.expires_at)
    return pb.SendAccountCodeResponse(delivery=delivery)


def _locked_pb(done: StateChange) -> pb.LockAccountResponse:
    return pb.LockAccountResponse(
        account=convert.account_pb(done.account), newly_locked=done.changed
    )


def _unlocked_pb(done: StateChange) -> pb.UnlockAccountResponse:
    return pb.UnlockAccountResponse(account=convert.account_pb(done.account))


class AccountLifeRpcs(ServicerBase):
    async def ResendActivationCode(
        self, request: pb.ResendActivationCodeRequest, context: Context
    ) -> pb.ResendActivationCodeResponse:
        req = CodeRequest(
            CodePurpose.ACTIVATION, request.personal_id, request.phone_number, request.email
        )
        reply = self._reply(
            "resend_activation_code",
            request,
            request.request_id,
            pb.ResendActivationCodeResponse,
            _resent_pb,
        )
        response = await request_code(
            self._uow, self._ctx, req, reply, source=self._source(context)
        )
        self.on_outbox_write()
        return response

    async def SendAccountCode(
        self, request: pb.SendAccountCodeRequest, context: Context
    ) -> pb.SendAccountCodeResponse:
        purpose = convert.code_purpose(request.purpose)
        req = CodeRequest(purpose, request.personal_id, request.phone_number, request.email)
        reply = self._reply(
            "send_account_code",
            request,
            request.request_id,
            pb.SendAccountCodeResponse,
            _account_code_pb,
        )
        response = await request_code(
            self._uow, self._ctx, req, reply, source=self._source(context)
        )
        self.on_outbox_write()
        return response

    async def RefreshSession(
        self, request: pb.RefreshSessionRequest, context: Context
    ) -> pb.RefreshSessionResponse:
        reply = self._reply(
            "refresh_session",
            request,
            request.request_id,
            pb.RefreshSessionResponse,
            convert.refreshed_pb,
        )
        refreshed: pb.RefreshSessionResponse = await refresh_session(
            self._uow, self._ctx, request.refresh_token, reply
        )
        return refreshed

    async def SignOut(self, request: pb.SignOutRequest, context: Context) -> pb.SignOutResponse:
        reply = self._reply(
            "sign_out", request, request.request_id, pb.SignOutResponse, _empty(pb.SignOutResponse)
        )
        return await sign_out(self._uow, self._ctx, metadata.bearer_token(context), reply)

    async def ListSessions(
        self, request: pb.ListSessionsRequest, context: Context
    ) -> pb.ListSessionsResponse:
        page = await list_sessions(
            self._uow,
            self._ctx,
            metadata.bearer_token(context),
            request.page_size,
            request.page_token,
        )
        return convert.session_page_pb(page)

    async def RevokeSession(
        self, request: pb.RevokeSessionRequest, context: Context
    ) -> pb.RevokeSessionResponse:
        reply = self._reply(
            "revoke_session",
            request,
            request.request_id,
            pb.RevokeSessionResponse,
            _empty(pb.RevokeSessionResponse),
        )
        return await revoke_session(
            self._uow, self._ctx, metadata.bearer_token(context), request.session_id, reply
        )

    async def LockAccount(
        self, request: pb.LockAccountRequest, context: Context
    ) -> pb.LockAccountResponse:
        which = request.WhichOneof("proof")
        if which == "password":
            cmd = LockCommand(
                LockProof.PASSWORD,
                personal_id=request.password.personal_id,
                password=request.password.password,
            )
        elif which == "one_time_code":
            cmd = LockCommand(
                LockProof.ONE_TIME_CODE,
                personal_id=request.one_time_code.personal_id,
                one_time_code=request.one_time_code.one_time_code,
            )
        else:
            cmd = LockCommand(LockProof.SESSION, access_token=metadata.bearer_token(context) or "")
        reply = self._reply(
            "lock_account", request, request.request_id, pb.LockAccountResponse, _locked_pb
        )
        response = await lock_account(
            self._uow, self._ctx, cmd, reply, source=self._source(context)
        )
        self.on_outbox_write()
        return response

    async def UnlockAccount(
        self, request: pb.UnlockAccountRequest, context: Context
    ) -> pb.UnlockAccountResponse:
        reply = self._reply(
            "unlock_account", request, request.request_id, pb.UnlockAccountResponse, _unlocked_pb
        )
        which = request.WhichOneof("unlock")
        if which == "officer":
            response = await unlock_by_officer(
                self._uow,
                self._ctx,
                metadata.officer_key(context),
                request.officer.personal_id,
                reply,
            )
        elif which == "citizen":
            c = request.citizen
            response = await unlock_by_citizen(
                self._uow,
                self._ctx,
                c.personal_id,
                c.password,
                c.one_time_code,
                reply,
                source=self._source(context),
            )
        else:
            raise InvalidInput.of("unlock", "UNLOCK_MISSING", "set either officer or citizen")
        self.on_outbox_write()
        return response


def _empty(kind: type[M]) -> Callable[[None], M]:
    """For RPCs whose answer is an empty message."""
    return lambda _: kind()
