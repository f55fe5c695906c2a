"""eid.v1.IdentityService, a level-2 citizen's linked documents: link, list,
unlink. Translation only, as in identity_servicer.py."""

from __future__ import annotations

from eid.v1 import identity_service_pb2 as pb
from eid_service.api import convert, metadata
from eid_service.api.servicer_base import Context, ServicerBase
from eid_service.domain.linked_document import LinkedDocument
from eid_service.use_cases.linked_documents import (
    DocumentCommand,
    link_document,
    list_linked_documents,
    unlink_document,
)
from eid_service.use_cases.replies import Reply


def document_command(request: pb.LinkDocumentRequest | pb.UnlinkDocumentRequest) -> DocumentCommand:
    return DocumentCommand(convert.document_type(request.type), request.number)


class DocumentRpcs(ServicerBase):
    async def LinkDocument(  # noqa: N802 (named after the RPC)
        self, request: pb.LinkDocumentRequest, context: Context
    ) -> pb.LinkDocumentResponse:
        reply: Reply[LinkedDocument, pb.LinkDocumentResponse] = self._reply(
            "link_document",
            request,
            request.request_id,
            pb.LinkDocumentResponse,
            lambda d: pb.LinkDocumentResponse(document=convert.linked_document_pb(d)),
        )
        return await link_document(
            self._uow, self._ctx, metadata.bearer_token(context), document_command(request), reply
        )

    async def ListLinkedDocuments(  # noqa: N802 (named after the RPC)
        self, request: pb.ListLinkedDocumentsRequest, context: Context
    ) -> pb.ListLinkedDocumentsResponse:
        page = await list_linked_documents(
            self._uow,
            self._ctx,
            metadata.bearer_token(context),
            request.page_size,
            request.page_token,
        )
        return pb.ListLinkedDocumentsResponse(
            documents=[convert.linked_document_pb(d) for d in page.documents],
            next_page_token=page.next_page_token,
        )

    async def UnlinkDocument(  # noqa: N802 (named after the RPC)
        self, request: pb.UnlinkDocumentRequest, context: Context
    ) -> pb.UnlinkDocumentResponse:
        reply: Reply[LinkedDocument, pb.UnlinkDocumentResponse] = self._reply(
            "unlink_document",
            request,
            request.request_id,
            pb.UnlinkDocumentResponse,
            lambda d: pb.UnlinkDocumentResponse(document=convert.linked_document_pb(d)),
        )
        return await unlink_document(
            self._uow, self._ctx, metadata.bearer_token(context), document_command(request), reply
        )
