"""Documents linked to level-2 accounts (domain/linked_document.py): the
citizen links, lists and unlinks their own, signed in ("at home", after
level 2); an officer links one at the counter (registration_office.py,
`link_document_for_citizen`), through `link_from_registry` too.

What a signed-in citizen is told: whether the registry records the document
as theirs (DOCUMENT_NOT_FOUND otherwise, the same answer whether the number
does not exist or another person holds it: linking is no way to learn who
holds a number), whether it has expired, whether it is linked already.
Relying parties see linked documents only through Verify and online shares,
under the matching documents.* scope (the view of accounts.view)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from eid_service.domain.account import AccountLevel
from eid_service.domain.linked_document import (
    LINKED_BY_CITIZEN,
    LinkedDocument,
    already_linked,
    document_not_found,
    link,
    linked_document_not_found,
    parse_document_number,
    parse_document_type,
    require_level_2,
)
from eid_service.domain.registry_person import DocumentType
from eid_service.use_cases import pages
from eid_service.use_cases.auth import citizen_of_session, session_missing
from eid_service.use_cases.call_audit import call_entry
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.ports import Repositories, UnitOfWork
from eid_service.use_cases.replies import Answer, Reply, SessionScope, once, session_scope
from eid_service.use_cases.validation import Violations

# A page token names the last entry's key: its type and a keyed digest.
_ENTRY_KEY = re.compile(r"[a-z_]{1,32}:[0-9a-f]{64}")
# Audit actions, with the type: "link_doc.tax_code" (the column holds 32 characters).
LINK_ACTION = "link_doc"
UNLINK_ACTION = "unlink_doc"


@dataclass(frozen=True)
class DocumentCommand:
    """A document named by type and number, as the request sent them (None:
    the type was unspecified)."""

    doc_type: DocumentType | None
    number: str = field(repr=False)


@dataclass(frozen=True)
class LinkedDocumentPage:
    documents: list[LinkedDocument]
    next_page_token: str = ""


def parse_document(cmd: DocumentCommand, v: Violations) -> tuple[DocumentType, str] | None:
    """The type and normalised number; their problems go to `v`."""
    doc_type = v.check(lambda: parse_document_type(cmd.doc_type))
    number = v.check(lambda: parse_document_number(cmd.number))
    return None if doc_type is None or number is None else (doc_type, number)


def link_from_registry(
    r: Repositories,
    account_id: str,
    level: AccountLevel,
    holder_id: str,
    doc_type: DocumentType,
    number: str,
    now: datetime,
    linked_by: str = LINKED_BY_CITIZEN,
) -> LinkedDocument:
    """Links the registry's document of this type and number to the account
    of the person with ID number `holder_id` (inside a transaction); the
    domain error of a level-1 account, a document the registry does not
    record as theirs, an expired one or one linked already."""
    require_level_2(level)
    found = r.registry.document(holder_id, doc_type, number)
    if found is None:
        raise document_not_found()
    document = link(found, now.date(), now, linked_by)
    if not r.account_documents.add(account_id, document):
        raise already_linked()  # also when a concurrent duplicate linked it first
    return document


def _citizen_call(
    ctx: UseCaseContext, session_token: str | None, cmd: DocumentCommand
) -> tuple[str, DocumentType, str, datetime, SessionScope]:
    """A signed-in citizen's call about one document, checked before any
    work: the session token, the type, number, time and request-id scope."""
    if not session_token:
        raise session_missing()
    v = Violations()
    parsed = parse_document(cmd, v)
    v.raise_if_any()
    assert parsed is not None
    now, caller = ctx.clock(), session_scope(ctx, session_token)
    return (session_token, *parsed, now, caller)


async def link_document(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    session_token: str | None,
    cmd: DocumentCommand,
    reply: Reply[LinkedDocument, Answer],
) -> Answer:
    """The signed-in level-2 citizen links one of their registry documents.
    Request ids are scoped to the session."""
    token, doc_type, number, now, caller = _citizen_call(ctx, session_token, cmd)

    def work(r: Repositories) -> Answer:
        earlier = reply.replay(r, caller)
        if earlier is not None:
            return earlier
        citizen = citizen_of_session(r, token, now)
        require_level_2(citizen.level)  # before anything is decrypted
        account = r.accounts.get(citizen.id)
        assert account is not None
        holder = account.demographics.personal_id
        document = link_from_registry(r, citizen.id, citizen.level, holder, doc_type, number, now)
        action = f"{LINK_ACTION}.{doc_type.value}"
        r.audit.append(call_entry(reply, citizen.subject, citizen.id, None, action, "ok", now))
        return reply.finish(r, caller, document, now)

    return await once(uow, reply, caller, work)


async def list_linked_documents(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    session_token: str | None,
    page_size: int,
    page_token: str,
) -> LinkedDocumentPage:
    """The signed-in citizen's linked documents, by type (AIP-158 pages)."""
    if not session_token:
        raise session_missing()
    size = pages.page_size(page_size)
    after = pages.after_id(page_token, _ENTRY_KEY)
    now = ctx.clock()

    def page(r: Repositories) -> LinkedDocumentPage:
        citizen = citizen_of_session(r, session_token, now)
        found = r.account_documents.page_of(citizen.id, after, size + 1)
        shown = found[:size]
        more = len(found) > size
        token = pages.next_page_token(shown[-1].key) if more else ""
        return LinkedDocumentPage([e.document for e in shown], token)

    return await uow.read(page)


async def unlink_document(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    session_token: str | None,
    cmd: DocumentCommand,
    reply: Reply[LinkedDocument, Answer],
) -> Answer:
    """Unlinks one of the signed-in citizen's documents: no party sees it
    from then on."""
    token, doc_type, number, now, caller = _citizen_call(ctx, session_token, cmd)

    def work(r: Repositories) -> Answer:
        earlier = reply.replay(r, caller)
        if earlier is not None:
            return earlier
        citizen = citizen_of_session(r, token, now)
        removed = r.account_documents.remove(citizen.id, doc_type, number)
        if removed is None:
            raise linked_document_not_found()
        action = f"{UNLINK_ACTION}.{doc_type.value}"
        r.audit.append(call_entry(reply, citizen.subject, citizen.id, None, action, "ok", now))
        return reply.finish(r, caller, removed, now)

    return await once(uow, reply, caller, work)
