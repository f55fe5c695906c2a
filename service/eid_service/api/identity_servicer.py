"""eid.v1.IdentityService: thin translation between messages and use cases."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from grpc import aio

from eid.v1 import identity_service_pb2 as pb
from eid.v1 import identity_service_pb2_grpc as pb_grpc
from eid_service.api import convert, metadata
from eid_service.api.idempotency import run_once
from eid_service.api.qr import qr_png
from eid_service.domain.errors import InvalidInput
from eid_service.store.uow import UnitOfWork
from eid_service.use_cases.activate import ActivateCommand, activate
from eid_service.use_cases.auth import authenticate_citizen, authenticate_party
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.register import RegisterCommand, register
from eid_service.use_cases.share import ShareCommand, share_via_qr
from eid_service.use_cases.sign_in import sign_in
from eid_service.use_cases.verify import redeem_share, verify_password

Context = aio.ServicerContext[Any, Any]
CHANNEL_TO_PB = {"sms": pb.DELIVERY_CHANNEL_SMS, "email": pb.DELIVERY_CHANNEL_EMAIL}


class IdentityServicer(pb_grpc.IdentityServiceServicer):
    def __init__(self, new_uow: Callable[[], UnitOfWork], ctx: UseCaseContext) -> None:
        self._new_uow = new_uow
        self._ctx = ctx
        # Set after each commit that queued a message, so delivery is prompt.
        self.on_outbox_write: Callable[[], None] = lambda: None

    async def Register(self, request: pb.RegisterRequest, context: Context) -> pb.RegisterResponse:
        cmd = RegisterCommand(
            personal_id=request.personal_id,
            full_name=request.full_name,
            birth_date=request.birth_date,
            gender=convert.GENDER_FROM_PB.get(request.gender),
            phone_number=request.phone_number,
            email=request.email,
        )

        async def work(uow: UnitOfWork) -> pb.RegisterResponse:
            done = await register(uow, self._ctx, cmd)
            return pb.RegisterResponse(
                account=convert.account_pb(done.account),
                delivery=pb.ActivationDelivery(
                    channel=CHANNEL_TO_PB[done.channel],
                    masked_destination=done.masked_destination,
                    expire_time=convert.timestamp(done.code_expires_at),
                ),
            )

        response = await run_once(
            self._new_uow,
            scope="register",
            request=request,
            request_id=request.request_id,
            response_type=pb.RegisterResponse,
            now=self._ctx.clock(),
            work=work,
        )
        self.on_outbox_write()
        return response

    async def Activate(self, request: pb.ActivateRequest, context: Context) -> pb.ActivateResponse:
        cmd = ActivateCommand(request.personal_id, request.activation_code, request.new_password)

        async def work(uow: UnitOfWork) -> pb.ActivateResponse:
            account = await activate(uow, self._ctx, cmd)
            return pb.ActivateResponse(account=convert.account_pb(account))

        return await run_once(
            self._new_uow,
            scope="activate",
            request=request,
            request_id=request.request_id,
            response_type=pb.ActivateResponse,
            now=self._ctx.clock(),
            work=work,
        )

    async def SignIn(self, request: pb.SignInRequest, context: Context) -> pb.SignInResponse:
        async with self._new_uow() as uow:
            done = await sign_in(uow, self._ctx, request.personal_id, request.password)
            await uow.commit()
        return pb.SignInResponse(
            session_token=done.session_token,
            expire_time=convert.timestamp(done.expires_at),
            account=convert.account_pb(done.account),
        )

    async def Verify(self, request: pb.VerifyRequest, context: Context) -> pb.VerifyResponse:
        async with self._new_uow() as uow:
            party = await authenticate_party(uow, metadata.api_key(context))
            which = request.WhichOneof("credential")
            if which == "password":
                verdict = await verify_password(
                    uow, self._ctx, party, request.password.personal_id, request.password.password
                )
            elif which == "qr_share":
                verdict = await redeem_share(uow, self._ctx, party, request.qr_share.token)
            else:
                raise InvalidInput.of(
                    "credential", "CREDENTIAL_MISSING", "set either password or qr_share"
                )
            await uow.commit()
        return convert.verification_pb(verdict)

    async def ShareViaQR(
        self, request: pb.ShareViaQRRequest, context: Context
    ) -> pb.ShareViaQRResponse:
        async with self._new_uow() as uow:
            citizen = await authenticate_citizen(uow, self._ctx, metadata.bearer_token(context))
        cmd = ShareCommand(
            attributes=[convert.ATTRIBUTE_FROM_PB.get(a) for a in request.attributes],
            audience_party_id=request.audience_party_id,
            ttl=convert.duration_or_none(request),
        )

        async def work(uow: UnitOfWork) -> pb.ShareViaQRResponse:
            issued = await share_via_qr(uow, self._ctx, citizen, cmd)
            return pb.ShareViaQRResponse(
                share_id=issued.grant.id,
                token=issued.token,
                expire_time=convert.timestamp(issued.grant.expires_at),
            )

        response = await run_once(
            self._new_uow,
            scope=f"share:{citizen.id}",
            request=request,
            request_id=request.request_id,
            response_type=pb.ShareViaQRResponse,
            now=self._ctx.clock(),
            work=work,
        )
        # Drawn after the transaction and off the event loop: it is the slowest
        # step, and deterministic, so a replayed response draws the same image.
        response.qr_png = await asyncio.to_thread(qr_png, response.token)
        return response
