"""A relying party's status webhook on :class:`~eid_client.EidClient`
(:class:`WebhookCalls`) and :class:`~eid_client.AsyncEidClient`
(:class:`AsyncWebhookCalls`): set it, remove it, read it. The events it
receives are checked with :func:`eid_client.status_events.verify_status_event`
and the keys of :meth:`~eid_client.EidClient.verification_keys`."""

from __future__ import annotations

from typing import TypeVar

import grpc
from google.protobuf.message import Message
from grpc import aio

from eid.v1 import identity_service_pb2 as pb
from eid.v1 import identity_service_pb2_grpc as pb_grpc
from eid_client import _requests as req
from eid_client._base import Credentials

_Req = TypeVar("_Req", bound=Message)
_Resp = TypeVar("_Resp", bound=Message)


def set_request(url: str, request_id: str | None) -> pb.SetStatusWebhookRequest:
    return pb.SetStatusWebhookRequest(request_id=req.new_request_id(request_id), url=url)


def _webhook(
    response: pb.SetStatusWebhookResponse | pb.GetStatusWebhookResponse,
) -> pb.StatusWebhook | None:
    return response.webhook if response.HasField("webhook") else None


class WebhookCalls(Credentials):
    """Mixed into :class:`~eid_client.EidClient`, which supplies ``_stub`` and ``_call``."""

    _stub: pb_grpc.IdentityServiceStub

    def _call(
        self,
        method: grpc.UnaryUnaryMultiCallable[_Req, _Resp],
        request: _Req,
        metadata: req.Metadata = (),
    ) -> _Resp:
        raise NotImplementedError  # pragma: no cover - EidClient defines it

    def set_status_webhook(self, url: str, *, request_id: str | None = None) -> pb.StatusWebhook:
        """Relying party: POST status events (a citizen you verified was locked,
        unlocked or deactivated) to ``url``, an https URL on a public host."""
        response = self._call(
            self._stub.SetStatusWebhook,
            set_request(url, request_id),
            req.api_key_metadata(self.api_key),
        )
        webhook = _webhook(response)
        assert webhook is not None  # the server answers the webhook it set
        return webhook

    def clear_status_webhook(self, *, request_id: str | None = None) -> None:
        """Relying party: stop status events (those not yet sent are not delivered)."""
        self._call(
            self._stub.SetStatusWebhook,
            set_request("", request_id),
            req.api_key_metadata(self.api_key),
        )

    def status_webhook(self) -> pb.StatusWebhook | None:
        """Relying party: the webhook status events go to, None if there is none."""
        response = self._call(
            self._stub.GetStatusWebhook,
            pb.GetStatusWebhookRequest(),
            req.api_key_metadata(self.api_key),
        )
        return _webhook(response)


class AsyncWebhookCalls(Credentials):
    """Mixed into :class:`~eid_client.AsyncEidClient`, which supplies ``_stub`` and ``_call``."""

    _stub: pb_grpc.IdentityServiceAsyncStub

    async def _call(
        self,
        method: aio.UnaryUnaryMultiCallable[_Req, _Resp],
        request: _Req,
        metadata: req.Metadata = (),
    ) -> _Resp:
        raise NotImplementedError  # pragma: no cover - AsyncEidClient defines it

    async def set_status_webhook(
        self, url: str, *, request_id: str | None = None
    ) -> pb.StatusWebhook:
        """See :meth:`eid_client.EidClient.set_status_webhook`."""
        response = await self._call(
            self._stub.SetStatusWebhook,
            set_request(url, request_id),
            req.api_key_metadata(self.api_key),
        )
        webhook = _webhook(response)
        assert webhook is not None
        return webhook

    async def clear_status_webhook(self, *, request_id: str | None = None) -> None:
        """See :meth:`eid_client.EidClient.clear_status_webhook`."""
        await self._call(
            self._stub.SetStatusWebhook,
            set_request("", request_id),
            req.api_key_metadata(self.api_key),
        )

    async def status_webhook(self) -> pb.StatusWebhook | None:
        """See :meth:`eid_client.EidClient.status_webhook`."""
        response = await self._call(
            self._stub.GetStatusWebhook,
            pb.GetStatusWebhookRequest(),
            req.api_key_metadata(self.api_key),
        )
        return _webhook(response)
