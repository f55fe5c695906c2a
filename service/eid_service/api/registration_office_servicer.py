"""eid.v1.RegistrationOfficeService: level 2 at the police counter. Thin
translation between messages and the use cases of
use_cases/registration_office.py, as in identity_servicer.py."""

from __future__ import annotations

from eid.v1 import registration_office_service_pb2 as pb
from eid.v1 import registration_office_service_pb2_grpc as pb_grpc
from eid_service.api import convert, metadata
from eid_service.api.servicer_base import Context, ServicerBase
from eid_service.domain.account import Account
from eid_service.domain.linked_document import LinkedDocument
from eid_service.use_cases.linked_documents import DocumentCommand
from eid_service.use_cases.officer_auth import OfficerCall
from eid_service.use_cases.registration_office import (
    CaptureInput,
    Level2Registered,
    OfficerLinkCommand,
    RegisterLevel2Command,
    UpgradeCommand,
    link_document_for_citizen,
    register_level2,
    upgrade_to_level2,
)


def officer_call(context: Context) -> OfficerCall:
    """The officer's key, and whether another caller's credential came instead."""
    other = metadata.bearer_token(context) is not None or bool(metadata.api_key(context))
    return OfficerCall(metadata.officer_key(context), other_credential=other)


def capture_input(capture: pb.BiometricCapture) -> CaptureInput:
    return CaptureInput(
        portrait=capture.portrait,
        fingerprints=tuple((int(f.finger), f.template) for f in capture.fingerprints),
    )


def registered_pb(done: Level2Registered) -> pb.RegisterLevel2Response:
    delivery = convert.delivery_pb(done.channel, done.masked_destination, done.code_expires_at)
    return pb.RegisterLevel2Response(account=convert.account_pb(done.account), delivery=delivery)


def upgraded_pb(account: Account) -> pb.UpgradeToLevel2Response:
    return pb.UpgradeToLevel2Response(account=convert.account_pb(account))


def linked_pb(document: LinkedDocument) -> pb.LinkDocumentForCitizenResponse:
    return pb.LinkDocumentForCitizenResponse(document=convert.linked_document_pb(document))


class RegistrationOfficeServicer(ServicerBase, pb_grpc.RegistrationOfficeServiceServicer):
    """Each call: the officer's credentials from the metadata, the request as
    a command, and one use case that checks both."""

    async def RegisterLevel2(
        self, request: pb.RegisterLevel2Request, context: Context
    ) -> pb.RegisterLevel2Response:
        cmd = RegisterLevel2Command(
            personal_id=request.personal_id,
            full_name=request.full_name,
            birth_date=request.birth_date,
            gender=convert.GENDER_FROM_PB.get(request.gender),
            phone_number=request.phone_number,
            email=request.email,
            capture=capture_input(request.capture),
        )
        reply = self._reply(
            "register_level2",
            request,
            request.request_id,
            pb.RegisterLevel2Response,
            registered_pb,
            context,
        )
        response = await register_level2(self._uow, self._ctx, officer_call(context), cmd, reply)
        self.on_outbox_write()
        return response

    async def UpgradeToLevel2(
        self, request: pb.UpgradeToLevel2Request, context: Context
    ) -> pb.UpgradeToLevel2Response:
        cmd = UpgradeCommand(request.personal_id, capture_input(request.capture))
        reply = self._reply(
            "upgrade_to_level2",
            request,
            request.request_id,
            pb.UpgradeToLevel2Response,
            upgraded_pb,
            context,
        )
        response = await upgrade_to_level2(self._uow, self._ctx, officer_call(context), cmd, reply)
        self.on_outbox_write()
        return response

    async def LinkDocumentForCitizen(
        self, request: pb.LinkDocumentForCitizenRequest, context: Context
    ) -> pb.LinkDocumentForCitizenResponse:
        cmd = OfficerLinkCommand(
            request.personal_id,
            DocumentCommand(convert.document_type(request.type), request.number),
        )
        reply = self._reply(
            "link_document_for_citizen",
            request,
            request.request_id,
            pb.LinkDocumentForCitizenResponse,
            linked_pb,
            context,
        )
        return await link_document_for_citizen(
            self._uow, self._ctx, officer_call(context), cmd, reply
        )
