"""A relying party's own status webhook: SetStatusWebhook, GetStatusWebhook."""

from __future__ import annotations

from eid.v1 import identity_service_pb2 as pb
from eid_service.api import convert
from eid_service.api.servicer_base import Context, ServicerBase
from eid_service.use_cases.party_webhooks import own_webhook, set_own_webhook
from eid_service.use_cases.ports import WebhookTarget
from eid_service.use_cases.replies import Reply


def _webhook_pb(found: WebhookTarget | None) -> pb.StatusWebhook | None:
    if found is None:
        return None
    return pb.StatusWebhook(url=found.url, update_time=convert.timestamp(found.updated_at))


class WebhookRpcs(ServicerBase):
    async def SetStatusWebhook(
        self, request: pb.SetStatusWebhookRequest, context: Context
    ) -> pb.SetStatusWebhookResponse:
        party = await self._party(context)
        reply: Reply[WebhookTarget | None, pb.SetStatusWebhookResponse] = self._reply(
            "set_status_webhook",
            request,
            request.request_id,
            pb.SetStatusWebhookResponse,
            lambda found: pb.SetStatusWebhookResponse(webhook=_webhook_pb(found)),
        )
        return await set_own_webhook(self._uow, self._ctx, party, request.url, reply)

    async def GetStatusWebhook(
        self, request: pb.GetStatusWebhookRequest, context: Context
    ) -> pb.GetStatusWebhookResponse:
        party = await self._party(context)
        return pb.GetStatusWebhookResponse(webhook=_webhook_pb(await own_webhook(self._uow, party)))
