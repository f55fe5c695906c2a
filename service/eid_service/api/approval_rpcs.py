"""eid.v1.IdentityService, approval on the citizen's device: the party's
StartApproval and the citizen's ListApprovalRequests, DecideApproval and
ClaimApproval (Verify collects the outcome: verify_rpcs.py). Translation
only, as in identity_servicer.py."""

from __future__ import annotations

import asyncio

from eid.v1 import identity_service_pb2 as pb
from eid_service.api import approval_convert as show
from eid_service.api import convert, metadata
from eid_service.api.qr import qr_png, qr_svg
from eid_service.api.servicer_base import Context, ServicerBase
from eid_service.api.verify_rpcs import requested_attributes
from eid_service.domain.errors import InvalidInput
from eid_service.use_cases.approval_decisions import Decision, claim_approval, decide_approval
from eid_service.use_cases.approvals import (
    ApprovalPage,
    ApprovalView,
    StartCommand,
    list_approval_requests,
    start_approval,
)
from eid_service.use_cases.replies import Reply


def _image(request: pb.StartApprovalRequest) -> str:
    found = convert.IMAGE_FORMATS.get(request.image_format)
    if found is None:
        raise InvalidInput.of(
            "image_format", "IMAGE_FORMAT_UNKNOWN", "image_format must be NONE, PNG or SVG"
        )
    if found != "none" and request.personal_id:
        raise InvalidInput.of(
            "image_format",
            "IMAGE_FORMAT_NEEDS_QR",
            "a QR image is for a request without personal_id (the QR variant)",
        )
    return found


class ApprovalRpcs(ServicerBase):
    async def StartApproval(
        self, request: pb.StartApprovalRequest, context: Context
    ) -> pb.StartApprovalResponse:
        party = await self._party(context)
        image = _image(request)
        cmd = StartCommand(
            request.personal_id, requested_attributes(request, party), request.message
        )
        reply = self._reply(
            "start_approval",
            request,
            request.request_id,
            pb.StartApprovalResponse,
            show.started_pb,
            context,
        )
        response = await start_approval(self._uow, self._ctx, party, cmd, reply)
        # Drawn after the transaction and off the event loop (as ShareViaQR does).
        if image == "png":
            response.qr_png = await asyncio.to_thread(qr_png, response.qr_token)
        elif image == "svg":
            response.qr_svg = await asyncio.to_thread(qr_svg, response.qr_token)
        return response

    async def ListApprovalRequests(
        self, request: pb.ListApprovalRequestsRequest, context: Context
    ) -> pb.ListApprovalRequestsResponse:
        page: ApprovalPage = await list_approval_requests(
            self._uow,
            self._ctx,
            metadata.bearer_token(context),
            request.page_size,
            request.page_token,
        )
        return pb.ListApprovalRequestsResponse(
            approval_requests=[show.approval_request_pb(v) for v in page.approvals],
            next_page_token=page.next_page_token,
        )

    async def DecideApproval(
        self, request: pb.DecideApprovalRequest, context: Context
    ) -> pb.DecideApprovalResponse:
        decision = Decision(
            request.approval_id, show.decision(request.decision), request.verification_code
        )
        reply: Reply[ApprovalView, pb.DecideApprovalResponse] = self._reply(
            "decide_approval",
            request,
            request.request_id,
            pb.DecideApprovalResponse,
            lambda view: pb.DecideApprovalResponse(approval_request=show.approval_request_pb(view)),
            context,
        )
        return await decide_approval(
            self._uow, self._ctx, metadata.bearer_token(context), decision, reply
        )

    async def ClaimApproval(
        self, request: pb.ClaimApprovalRequest, context: Context
    ) -> pb.ClaimApprovalResponse:
        reply: Reply[ApprovalView, pb.ClaimApprovalResponse] = self._reply(
            "claim_approval",
            request,
            request.request_id,
            pb.ClaimApprovalResponse,
            lambda view: pb.ClaimApprovalResponse(approval_request=show.approval_request_pb(view)),
            context,
        )
        return await claim_approval(
            self._uow, self._ctx, metadata.bearer_token(context), request.token, reply
        )
