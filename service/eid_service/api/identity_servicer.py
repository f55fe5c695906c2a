"""eid.v1.IdentityService: thin translation between messages and use cases.

Each method parses its message into a command, names the caller, and hands
both to one use case, which owns its transactions and idempotency. How a
result becomes a response message (and how that message is kept for a
retried request id) is given to the use case as a `Reply`."""

from __future__ import annotations

from eid.v1 import identity_service_pb2 as pb
from eid.v1 import identity_service_pb2_grpc as pb_grpc
from eid_service.api import convert
from eid_service.api.account_rpcs import AccountLifeRpcs
from eid_service.api.approval_rpcs import ApprovalRpcs
from eid_service.api.dependant_rpcs import DependantRpcs
from eid_service.api.document_rpcs import DocumentRpcs
from eid_service.api.mode_lock_rpcs import ModeLockRpcs
from eid_service.api.servicer_base import Context
from eid_service.api.share_rpcs import ShareRpcs
from eid_service.api.verify_rpcs import VerifyRpcs
from eid_service.api.webhook_rpcs import WebhookRpcs
from eid_service.domain.account import Account
from eid_service.use_cases.activate import ActivateCommand, activate
from eid_service.use_cases.register import PassportDeclaration, RegisterCommand, register
from eid_service.use_cases.replies import Reply
from eid_service.use_cases.sign_in import sign_in


def _passport(request: pb.RegisterRequest) -> PassportDeclaration | None:
    if not request.HasField("passport"):
        return None
    p = request.passport
    return PassportDeclaration(p.number, p.nationality, p.issue_date, p.issue_place)


class IdentityServicer(
    AccountLifeRpcs,
    ApprovalRpcs,
    DependantRpcs,
    DocumentRpcs,
    ModeLockRpcs,
    ShareRpcs,
    VerifyRpcs,
    WebhookRpcs,
    pb_grpc.IdentityServiceServicer,
):
    """Registration, activation and sign-in; the account's life after
    activation (sessions, codes, lock) is in AccountLifeRpcs, the citizen's
    Verify mode locks in ModeLockRpcs, QR shares and their keys in
    ShareRpcs, verification by relying parties in VerifyRpcs, approval
    requests on the citizen's device in ApprovalRpcs, a party's status
    webhook in WebhookRpcs, a guardian's dependants in DependantRpcs, a
    level-2 citizen's linked documents in DocumentRpcs."""

    async def Register(self, request: pb.RegisterRequest, context: Context) -> pb.RegisterResponse:
        cmd = RegisterCommand(
            personal_id=request.personal_id,
            full_name=request.full_name,
            birth_date=request.birth_date,
            gender=convert.GENDER_FROM_PB.get(request.gender),
            phone_number=request.phone_number,
            email=request.email,
            portrait=request.portrait,
            passport=_passport(request),
        )
        reply = self._reply(
            "register", request, request.request_id, pb.RegisterResponse, convert.registered_pb
        )
        response = await register(self._uow, self._ctx, cmd, reply, source=self._source(context))
        self.on_outbox_write()
        return response

    async def Activate(self, request: pb.ActivateRequest, context: Context) -> pb.ActivateResponse:
        cmd = ActivateCommand(request.personal_id, request.activation_code, request.new_password)
        reply: Reply[Account, pb.ActivateResponse] = self._reply(
            "activate",
            request,
            request.request_id,
            pb.ActivateResponse,
            lambda account: pb.ActivateResponse(account=convert.account_pb(account)),
        )
        return await activate(self._uow, self._ctx, cmd, reply, source=self._source(context))

    async def SignIn(self, request: pb.SignInRequest, context: Context) -> pb.SignInResponse:
        reply = self._reply(
            "sign_in", request, request.request_id, pb.SignInResponse, convert.signed_in_pb
        )
        signed_in: pb.SignInResponse = await sign_in(
            self._uow,
            self._ctx,
            request.personal_id,
            request.password,
            reply,
            source=self._source(context),
            device_name=request.device_name,
        )
        return signed_in
