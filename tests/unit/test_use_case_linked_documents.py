"""Linked documents against the fake store: only level 2 links; a number is
found only among the citizen's own registry documents (someone else's and
one that does not exist answer alike, before anything of either is read);
expiry, duplicates, request ids; list pages; unlink; the officer's link
audited under the officer; release through the account view by type."""

from __future__ import annotations

from dataclasses import astuple, replace
from datetime import date, timedelta

import pytest

from eid_service.domain.account import AccountLevel
from eid_service.domain.errors import AlreadyExists, InvalidInput, NotFound, PreconditionFailed
from eid_service.domain.linked_document import LinkedDocument, parse_document_number
from eid_service.domain.officer import OfficerRole
from eid_service.domain.registry_person import DocumentType, RegistryDocument
from eid_service.domain.share import Attribute
from eid_service.use_cases.linked_documents import (
    DocumentCommand,
    link_document,
    list_linked_documents,
    unlink_document,
)
from eid_service.use_cases.officer_auth import OfficerCall
from eid_service.use_cases.registration_office import OfficerLinkCommand, link_document_for_citizen
from tests.biometric_kit import adult, enrolled_person
from tests.unit.use_case_kit import Citizen, World, refused

NGOC = Citizen(adult(301), "0901234568", "")
BINH = Citizen(adult(302, "Trần Văn Bình"), "0901234569", "")
FAR = date.today() + timedelta(days=3000)


def _docs(serial: int) -> tuple[RegistryDocument, ...]:
    return (
        RegistryDocument(
            DocumentType.TAX_CODE, f"80{serial:08d}", "Cục Thuế", date(2015, 1, 2), None
        ),
        RegistryDocument(
            DocumentType.DRIVING_LICENCE, f"0101{serial:08d}", "Sở GTVT", date(2020, 1, 1), FAR
        ),
        RegistryDocument(
            DocumentType.HEALTH_INSURANCE,
            f"DN4{serial:010d}",
            "BHXH",
            date(2019, 1, 1),
            date(2019, 12, 31),
        ),
    )


@pytest.fixture
async def signed_in(world: World) -> tuple[World, str]:
    people = [
        replace(enrolled_person(citizen.demographics, serial), documents=_docs(serial))
        for citizen, serial in ((NGOC, 301), (BINH, 302))
    ]
    world.uow.run_now(lambda r: [r.registry.put_person(p) for p in people])
    ngoc = await world.active(NGOC)
    await world.active(BINH)
    world.uow.run_now(lambda r: r.accounts.raise_level(ngoc.id, AccountLevel.LEVEL_2))
    session = await world.sign_in(NGOC)
    return world, session.tokens.access_token


async def _link(
    world: World, token: str, doc_type: DocumentType | None, number: str, rid: str = ""
) -> LinkedDocument:
    cmd = DocumentCommand(doc_type, number)
    reply = world.reply(LinkedDocument, "link_document", astuple(cmd), rid)
    return await link_document(world.uow, world.ctx, token, cmd, reply)


async def test_link_list_unlink(signed_in: tuple[World, str]) -> None:
    world, token = signed_in
    tax, licence, _ = _docs(301)
    linked = await _link(world, token, DocumentType.TAX_CODE, "80-0000 0301", "r-1")
    assert (linked.doc_type, linked.number, linked.linked_by) == (
        DocumentType.TAX_CODE,
        tax.number,
        "citizen",
    )
    assert await _link(world, token, DocumentType.TAX_CODE, "80-0000 0301", "r-1") == linked
    assert isinstance(
        await refused(_link(world, token, DocumentType.TAX_CODE, tax.number)), AlreadyExists
    )
    await _link(world, token, DocumentType.DRIVING_LICENCE, licence.number)

    first = await list_linked_documents(world.uow, world.ctx, token, 1, "")
    assert [d.doc_type for d in first.documents] == [DocumentType.DRIVING_LICENCE]
    rest = await list_linked_documents(world.uow, world.ctx, token, 1, first.next_page_token)
    assert [d.doc_type for d in rest.documents] == [
        DocumentType.TAX_CODE
    ] and not rest.next_page_token

    account = next(
        a for a in world.uow.state.accounts.values() if a.demographics == NGOC.demographics
    )
    view = world.uow.run_now(lambda r: r.accounts.view(account.id, frozenset({Attribute.TAX_CODE})))
    assert view is not None and [d.number for d in view.documents] == [tax.number]
    assert view.released == frozenset({Attribute.TAX_CODE})

    cmd = DocumentCommand(DocumentType.TAX_CODE, tax.number)
    reply = world.reply(LinkedDocument, "unlink_document", astuple(cmd), "u-1")
    assert await unlink_document(world.uow, world.ctx, token, cmd, reply) == linked
    fresh = world.reply(LinkedDocument, "unlink_document", astuple(cmd), "")
    second = unlink_document(world.uow, world.ctx, token, cmd, fresh)
    again = await refused(second)
    assert isinstance(again, NotFound) and again.reason == "LINKED_DOCUMENT_NOT_FOUND"


async def test_refusals(signed_in: tuple[World, str]) -> None:
    world, token = signed_in
    theirs = await refused(_link(world, token, DocumentType.TAX_CODE, _docs(302)[0].number))
    nobodys = await refused(_link(world, token, DocumentType.TAX_CODE, "8099999999"))
    assert isinstance(theirs, NotFound) and (theirs.reason, theirs.message) == (
        nobodys.reason,
        nobodys.message,
    )
    expired = await refused(
        _link(world, token, DocumentType.HEALTH_INSURANCE, _docs(301)[2].number)
    )
    assert isinstance(expired, PreconditionFailed) and expired.reason == "DOCUMENT_EXPIRED"
    bad = await refused(_link(world, token, None, "x"))
    assert isinstance(bad, InvalidInput) and bad.reason == "INVALID_FIELDS"
    assert [v.reason for v in bad.violations] == [
        "DOCUMENT_TYPE_UNSPECIFIED",
        "DOCUMENT_NUMBER_INVALID",
    ]
    binh = await world.sign_in(BINH)
    level1 = await refused(
        _link(world, binh.tokens.access_token, DocumentType.TAX_CODE, _docs(302)[0].number)
    )
    assert isinstance(level1, PreconditionFailed) and level1.reason == "LEVEL_2_REQUIRED"
    assert world.uow.state.account_documents == {}


def test_numbers_are_read_as_registries_write_them() -> None:
    assert parse_document_number(" 29a-123.45 ") == "29A12345"
    for bad in ("", "123", "A" * 21, "8012 345é", "1" * 65):
        with pytest.raises(InvalidInput):
            parse_document_number(bad)


async def test_an_officer_links_and_is_audited(signed_in: tuple[World, str]) -> None:
    world, _ = signed_in
    officer, key = world.uow.run_now(
        lambda r: r.officers.create("Officer Hà", world.clock(), frozenset(OfficerRole))
    )
    _, unlock_key = world.uow.run_now(
        lambda r: r.officers.create("Officer Lan", world.clock(), frozenset({OfficerRole.UNLOCK}))
    )
    licence = _docs(301)[1]

    async def link(call: OfficerCall, pid: str) -> LinkedDocument:
        cmd = OfficerLinkCommand(pid, DocumentCommand(DocumentType.DRIVING_LICENCE, licence.number))
        reply = world.reply(LinkedDocument, "link_for_citizen", astuple(cmd), "")
        return await link_document_for_citizen(world.uow, world.ctx, call, cmd, reply)

    no_role = await refused(link(OfficerCall(unlock_key), NGOC.personal_id))
    assert no_role.reason == "OFFICER_ROLE_MISSING"
    done = await link(OfficerCall(key), NGOC.personal_id)
    assert done.linked_by == officer.id
    level1 = await refused(link(OfficerCall(key), BINH.personal_id))
    assert level1.reason == "LEVEL_2_REQUIRED"
    events = [
        (e.action, e.outcome, e.reason, e.actor)
        for e in world.audit_events(NGOC)
        if e.action.startswith("link_doc")
    ]
    assert events == [("link_doc.driving_licence", "ok", None, officer.id)]
