"""A guardian's dependants in :class:`~eid_client.EidClient`
(:class:`DependantCalls`) and :class:`~eid_client.AsyncEidClient`
(:class:`AsyncDependantCalls`): register a child under 14 under the signed-in
citizen's account, and list the dependants. Sharing a dependant's attributes
is :meth:`~eid_client.EidClient.share_via_qr` with ``dependant_account_id``;
the child's own access history, read by the guardian, is
:meth:`~eid_client.EidClient.list_access_history` with it.

Requests are built by ``_requests`` for both, as for every other call."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Iterator
from typing import TypeVar

import grpc
from google.protobuf.message import Message
from grpc import aio

from eid.v1 import identity_service_pb2 as pb
from eid.v1 import identity_service_pb2_grpc as pb_grpc
from eid_client import _requests as req
from eid_client._base import Credentials
from eid_client._pages import follow_pages, follow_pages_async

_Req = TypeVar("_Req", bound=Message)
_Resp = TypeVar("_Resp", bound=Message)


class DependantCalls(Credentials):
    """Mixed into :class:`~eid_client.EidClient`, which supplies ``_stub`` and ``_call``."""

    _stub: pb_grpc.IdentityServiceStub

    def _call(
        self,
        method: grpc.UnaryUnaryMultiCallable[_Req, _Resp],
        request: _Req,
        metadata: req.Metadata = (),
    ) -> _Resp:
        raise NotImplementedError  # pragma: no cover - EidClient defines it

    def register_dependant(
        self,
        *,
        personal_id: str,
        full_name: str,
        birth_date: datetime.date | str,
        gender: str | int,
        request_id: str | None = None,
        session_token: str | None = None,
    ) -> pb.RegisterDependantResponse:
        """Guardian: register a child under 14 whom the population registry
        records as yours, as a dependant of your (signed-in) account."""
        request = req.register_dependant_request(
            personal_id=personal_id,
            full_name=full_name,
            birth_date=birth_date,
            gender=gender,
            request_id=request_id,
        )
        return self._call(self._stub.RegisterDependant, request, self._session(session_token))

    def list_dependants(
        self, page_size: int = 0, page_token: str = "", session_token: str | None = None
    ) -> pb.ListDependantsResponse:
        """Guardian: one page of your dependants, oldest first; see :meth:`iter_dependants`."""
        request = req.list_dependants_request(page_size, page_token)
        return self._call(self._stub.ListDependants, request, self._session(session_token))

    def iter_dependants(
        self, page_size: int = 0, session_token: str | None = None
    ) -> Iterator[pb.Dependant]:
        """Every dependant, following ``next_page_token`` page by page."""
        token = session_token or self.session_token
        self._session(token)  # no session: fail now, not at the first next()

        return follow_pages(
            lambda page_token: self.list_dependants(page_size, page_token, token),
            lambda page: page.dependants,
        )


class AsyncDependantCalls(Credentials):
    """Mixed into :class:`~eid_client.AsyncEidClient`, which supplies ``_stub`` and ``_call``."""

    _stub: pb_grpc.IdentityServiceAsyncStub

    async def _call(
        self,
        method: aio.UnaryUnaryMultiCallable[_Req, _Resp],
        request: _Req,
        metadata: req.Metadata = (),
    ) -> _Resp:
        raise NotImplementedError  # pragma: no cover - AsyncEidClient defines it

    async def register_dependant(
        self,
        *,
        personal_id: str,
        full_name: str,
        birth_date: datetime.date | str,
        gender: str | int,
        request_id: str | None = None,
        session_token: str | None = None,
    ) -> pb.RegisterDependantResponse:
        """See :meth:`eid_client.EidClient.register_dependant`."""
        request = req.register_dependant_request(
            personal_id=personal_id,
            full_name=full_name,
            birth_date=birth_date,
            gender=gender,
            request_id=request_id,
        )
        return await self._call(self._stub.RegisterDependant, request, self._session(session_token))

    async def list_dependants(
        self, page_size: int = 0, page_token: str = "", session_token: str | None = None
    ) -> pb.ListDependantsResponse:
        """See :meth:`eid_client.EidClient.list_dependants`."""
        request = req.list_dependants_request(page_size, page_token)
        return await self._call(self._stub.ListDependants, request, self._session(session_token))

    def iter_dependants(
        self, page_size: int = 0, session_token: str | None = None
    ) -> AsyncIterator[pb.Dependant]:
        """Every dependant, page by page (``async for``)."""
        token = session_token or self.session_token
        self._session(token)  # no session: fail now, not at the first __anext__()

        return follow_pages_async(
            lambda page_token: self.list_dependants(page_size, page_token, token),
            lambda page: page.dependants,
        )
