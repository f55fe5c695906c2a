"""The approval flow on :class:`~eid_client.AsyncEidClient`: the methods and
arguments of :class:`eid_client._approval_calls.ApprovalCalls` as coroutines."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TypeVar

from google.protobuf.message import Message
from grpc import aio

from eid.v1 import identity_service_pb2 as pb
from eid.v1 import identity_service_pb2_grpc as pb_grpc
from eid_client import _approval_requests as areq
from eid_client import _requests as req
from eid_client._approval_calls import (
    DEFAULT_WAIT_SECONDS,
    PENDING,
    POLL_SECONDS,
    next_wait,
    pause_after,
)
from eid_client._base import Credentials
from eid_client._pages import follow_pages_async
from eid_client._verify_requests import Scopes
from eid_client.errors import EidError

_Req = TypeVar("_Req", bound=Message)
_Resp = TypeVar("_Resp", bound=Message)


class AsyncApprovalCalls(Credentials):
    """Mixed into :class:`~eid_client.AsyncEidClient`, which supplies ``_stub`` and ``_call``."""

    _stub: pb_grpc.IdentityServiceAsyncStub

    async def _call(
        self,
        method: aio.UnaryUnaryMultiCallable[_Req, _Resp],
        request: _Req,
        metadata: req.Metadata = (),
        deadline: float | None = None,
    ) -> _Resp:
        raise NotImplementedError  # pragma: no cover - AsyncEidClient defines it

    async def start_approval(
        self,
        personal_id: str = "",
        *,
        requested_scopes: Scopes = (),
        message: str = "",
        image_format: str = "none",
        request_id: str | None = None,
    ) -> pb.StartApprovalResponse:
        """See :meth:`eid_client.EidClient.start_approval`."""
        request = areq.start_approval_request(
            personal_id=personal_id,
            requested_scopes=requested_scopes,
            message=message,
            image_format=image_format,
            request_id=request_id,
        )
        metadata = req.api_key_metadata(self.api_key)
        return await self._call(self._stub.StartApproval, request, metadata)

    async def verify_approval(
        self,
        approval_id: str,
        *,
        wait: float = 0.0,
        requested_scopes: Scopes = (),
        request_id: str | None = None,
    ) -> pb.VerifyResponse:
        """See :meth:`eid_client.EidClient.verify_approval`."""
        request = areq.approval_verify_request(
            approval_id, wait=wait, requested_scopes=requested_scopes, request_id=request_id
        )
        metadata = req.api_key_metadata(self.api_key)
        return await self._call(self._stub.Verify, request, metadata, deadline=wait + self.timeout)

    async def wait_for_approval(
        self,
        approval_id: str,
        *,
        within: float = DEFAULT_WAIT_SECONDS,
        requested_scopes: Scopes = (),
        request_id: str | None = None,
        poll: float = POLL_SECONDS,
    ) -> pb.VerifyResponse:
        """See :meth:`eid_client.EidClient.wait_for_approval`."""
        rid = req.new_request_id(request_id)
        give_up = time.monotonic() + within
        last: EidError | None = None
        while True:
            wait = next_wait(give_up, poll, last)
            began = time.monotonic()
            try:
                return await self.verify_approval(
                    approval_id, wait=wait, requested_scopes=requested_scopes, request_id=rid
                )
            except EidError as e:
                if e.reason != PENDING:
                    raise
                last = e
            await asyncio.sleep(pause_after(last, began, wait, give_up))

    async def list_approval_requests(
        self, page_size: int = 0, page_token: str = "", session_token: str | None = None
    ) -> pb.ListApprovalRequestsResponse:
        """See :meth:`eid_client.EidClient.list_approval_requests`."""
        request = areq.list_approval_requests_request(page_size, page_token)
        metadata = self._session(session_token)
        return await self._call(self._stub.ListApprovalRequests, request, metadata)

    def iter_approval_requests(
        self, page_size: int = 0, session_token: str | None = None
    ) -> AsyncIterator[pb.ApprovalRequest]:
        """Every pending request, page by page (``async for``)."""
        token = session_token or self.session_token
        self._session(token)  # no session: fail now, not at the first __anext__()
        return follow_pages_async(
            lambda page_token: self.list_approval_requests(page_size, page_token, token),
            lambda page: page.approval_requests,
        )

    async def approve(
        self,
        approval_id: str,
        verification_code: str,
        *,
        request_id: str | None = None,
        session_token: str | None = None,
    ) -> pb.DecideApprovalResponse:
        """See :meth:`eid_client.EidClient.approve`."""
        return await self._decide(approval_id, True, verification_code, request_id, session_token)

    async def decline(
        self, approval_id: str, *, request_id: str | None = None, session_token: str | None = None
    ) -> pb.DecideApprovalResponse:
        """See :meth:`eid_client.EidClient.decline`."""
        return await self._decide(approval_id, False, "", request_id, session_token)

    async def _decide(
        self, approval_id: str, approve: bool, code: str, rid: str | None, session: str | None
    ) -> pb.DecideApprovalResponse:
        request = areq.decide_approval_request(
            approval_id, approve=approve, verification_code=code, request_id=rid
        )
        return await self._call(self._stub.DecideApproval, request, self._session(session))

    async def claim_approval(
        self, token: str, *, request_id: str | None = None, session_token: str | None = None
    ) -> pb.ClaimApprovalResponse:
        """See :meth:`eid_client.EidClient.claim_approval`."""
        request = areq.claim_approval_request(token, request_id)
        return await self._call(self._stub.ClaimApproval, request, self._session(session_token))
