"""A level-2 citizen's linked documents in :class:`~eid_client.EidClient`
(:class:`DocumentCalls`) and :class:`~eid_client.AsyncEidClient`
(:class:`AsyncDocumentCalls`): link a document the issuing agency's registry
records for you (driver's licence, vehicle registration, health or social
insurance, tax code) by type and number, list them, unlink one. Relying
parties see them only under the matching ``documents.*`` scope
(``CitizenAttributes.documents``). A registration officer links one with
:meth:`~eid_client.registration_office.RegistrationOfficeClient.link_document_for_citizen`.

Requests are built by ``_requests`` for both, as for every other call."""

from __future__ import annotations

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


class DocumentCalls(Credentials):
    """Mixed into :class:`~eid_client.EidClient`, which supplies ``_stub`` and ``_call``."""

    _stub: pb_grpc.IdentityServiceStub

    def _call(
        self,
        method: grpc.UnaryUnaryMultiCallable[_Req, _Resp],
        request: _Req,
        metadata: req.Metadata = (),
    ) -> _Resp:
        raise NotImplementedError  # pragma: no cover - EidClient defines it

    def link_document(
        self,
        document_type: str | int,
        number: str,
        *,
        request_id: str | None = None,
        session_token: str | None = None,
    ) -> pb.LinkDocumentResponse:
        """Level 2: link the registry's document of this type (``"tax_code"``,
        ``"driving_licence"``, ...) and number to your (signed-in) account."""
        request = req.document_request(pb.LinkDocumentRequest, document_type, number, request_id)
        return self._call(self._stub.LinkDocument, request, self._session(session_token))

    def list_linked_documents(
        self, page_size: int = 0, page_token: str = "", session_token: str | None = None
    ) -> pb.ListLinkedDocumentsResponse:
        """One page of your linked documents, by type; see :meth:`iter_linked_documents`."""
        request = req.list_linked_documents_request(page_size, page_token)
        return self._call(self._stub.ListLinkedDocuments, request, self._session(session_token))

    def iter_linked_documents(
        self, page_size: int = 0, session_token: str | None = None
    ) -> Iterator[pb.LinkedDocument]:
        """Every linked document, following ``next_page_token`` page by page."""
        token = session_token or self.session_token
        self._session(token)  # no session: fail now, not at the first next()

        return follow_pages(
            lambda page_token: self.list_linked_documents(page_size, page_token, token),
            lambda page: page.documents,
        )

    def unlink_document(
        self,
        document_type: str | int,
        number: str,
        *,
        request_id: str | None = None,
        session_token: str | None = None,
    ) -> pb.UnlinkDocumentResponse:
        """Unlink one of your linked documents: no party sees it from then on."""
        request = req.document_request(pb.UnlinkDocumentRequest, document_type, number, request_id)
        return self._call(self._stub.UnlinkDocument, request, self._session(session_token))


class AsyncDocumentCalls(Credentials):
    """Mixed into :class:`~eid_client.AsyncEidClient`, which supplies ``_stub`` and ``_call``."""

    _stub: pb_grpc.IdentityServiceAsyncStub

    async def _call(
        self,
        method: aio.UnaryUnaryMultiCallable[_Req, _Resp],
        request: _Req,
        metadata: req.Metadata = (),
    ) -> _Resp:
        raise NotImplementedError  # pragma: no cover - AsyncEidClient defines it

    async def link_document(
        self,
        document_type: str | int,
        number: str,
        *,
        request_id: str | None = None,
        session_token: str | None = None,
    ) -> pb.LinkDocumentResponse:
        """See :meth:`eid_client.EidClient.link_document`."""
        request = req.document_request(pb.LinkDocumentRequest, document_type, number, request_id)
        return await self._call(self._stub.LinkDocument, request, self._session(session_token))

    async def list_linked_documents(
        self, page_size: int = 0, page_token: str = "", session_token: str | None = None
    ) -> pb.ListLinkedDocumentsResponse:
        """See :meth:`eid_client.EidClient.list_linked_documents`."""
        request = req.list_linked_documents_request(page_size, page_token)
        return await self._call(
            self._stub.ListLinkedDocuments, request, self._session(session_token)
        )

    def iter_linked_documents(
        self, page_size: int = 0, session_token: str | None = None
    ) -> AsyncIterator[pb.LinkedDocument]:
        """Every linked document, page by page (``async for``)."""
        token = session_token or self.session_token
        self._session(token)  # no session: fail now, not at the first __anext__()

        return follow_pages_async(
            lambda page_token: self.list_linked_documents(page_size, page_token, token),
            lambda page: page.documents,
        )

    async def unlink_document(
        self,
        document_type: str | int,
        number: str,
        *,
        request_id: str | None = None,
        session_token: str | None = None,
    ) -> pb.UnlinkDocumentResponse:
        """See :meth:`eid_client.EidClient.unlink_document`."""
        request = req.document_request(pb.UnlinkDocumentRequest, document_type, number, request_id)
        return await self._call(self._stub.UnlinkDocument, request, self._session(session_token))
