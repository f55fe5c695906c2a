"""eid.v1.IdentityService, a guardian's dependants: register a child under
14, list them. Translation only, as in identity_servicer.py."""

from __future__ import annotations

from datetime import date

from eid.v1 import identity_service_pb2 as pb
from eid_service.api import convert, metadata
from eid_service.api.servicer_base import Context, ServicerBase
from eid_service.domain.dependant import Dependant
from eid_service.domain.share import Attribute, attribute_values
from eid_service.use_cases.dependants import (
    RegisterDependantCommand,
    list_dependants,
    register_dependant,
)
from eid_service.use_cases.replies import Reply

# What a guardian sees of the child: who it is, never contact data (it has none).
_SHOWN = (Attribute.PERSONAL_ID, Attribute.FULL_NAME, Attribute.BIRTH_DATE, Attribute.GENDER)


def dependant_pb(dependant: Dependant, today: date) -> pb.Dependant:
    account = convert.account_pb(dependant.account)
    account.guardian_account_id = dependant.guardian_account_id
    out = pb.Dependant(
        account=account,
        take_over_date=dependant.take_over_on.isoformat(),
        can_take_over=dependant.can_take_over(today),
    )
    convert.fill_attributes(
        out.attributes, attribute_values(dependant.account.demographics, _SHOWN)
    )
    return out


class DependantRpcs(ServicerBase):
    async def RegisterDependant(  # noqa: N802 (named after the RPC)
        self, request: pb.RegisterDependantRequest, context: Context
    ) -> pb.RegisterDependantResponse:
        cmd = RegisterDependantCommand(
            personal_id=request.personal_id,
            full_name=request.full_name,
            birth_date=request.birth_date,
            gender=convert.GENDER_FROM_PB.get(request.gender),
        )
        clock = self._ctx.clock
        reply: Reply[Dependant, pb.RegisterDependantResponse] = self._reply(
            "register_dependant",
            request,
            request.request_id,
            pb.RegisterDependantResponse,
            lambda d: pb.RegisterDependantResponse(dependant=dependant_pb(d, clock().date())),
        )
        return await register_dependant(
            self._uow, self._ctx, metadata.bearer_token(context), cmd, reply
        )

    async def ListDependants(  # noqa: N802 (named after the RPC)
        self, request: pb.ListDependantsRequest, context: Context
    ) -> pb.ListDependantsResponse:
        page = await list_dependants(
            self._uow,
            self._ctx,
            metadata.bearer_token(context),
            request.page_size,
            request.page_token,
        )
        today = self._ctx.clock().date()
        return pb.ListDependantsResponse(
            dependants=[dependant_pb(d, today) for d in page.dependants],
            next_page_token=page.next_page_token,
        )
