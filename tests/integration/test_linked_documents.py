"""Linked documents on level-2 accounts, through gRPC on SQLite and
PostgreSQL: a level-2 citizen links registry documents by type and number
(self-service), lists and unlinks them; a level-1 citizen is told
LEVEL_2_REQUIRED; someone else's number and a number that does not exist
answer alike; an officer with the registration role links one at the
counter, audited under the officer's id; relying parties see a document only
under its documents.* scope, asked for or consented to, in every mode that
releases attributes and in online shares (never offline); and no document
number is stored in clear."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from eid.v1 import identity_service_pb2 as pb
from eid.v1 import registration_office_service_pb2 as rpb
from eid.v1 import registration_office_service_pb2_grpc as rpb_grpc
from eid_client.client import EidClient
from eid_client.errors import EidError
from eid_client.registration_office import RegistrationOfficeClient
from eid_service.domain.officer import OfficerRole
from eid_service.domain.registry_person import DocumentType, RegistryDocument, RegistryPerson
from eid_service.domain.share import DOCUMENT_ATTRIBUTES, Attribute
from eid_service.use_cases.audit_check import verify_audit_chains
from tests.biometric_kit import adult, capture_of, enrolled_person
from tests.integration.flows import (
    PASSWORD,
    phone_of,
    register_and_activate,
    register_level2,
    register_level2_and_activate,
)
from tests.integration.harness import ServerHarness
from tests.integration.test_level2 import _dump

TODAY = date.today()
FAR = TODAY + timedelta(days=3000)
TAX, LICENCE = pb.DOCUMENT_TYPE_TAX_CODE, pb.DOCUMENT_TYPE_DRIVING_LICENCE
NOT_FOUND, DENIED = grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED
PRECONDITION, INVALID = grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT


def _documents(serial: int) -> tuple[RegistryDocument, ...]:
    return (
        RegistryDocument(
            DocumentType.TAX_CODE, f"80{serial:08d}", "Cục Thuế Hà Nội", date(2015, 1, 2), None
        ),
        RegistryDocument(
            DocumentType.DRIVING_LICENCE,
            f"0101{serial:08d}",
            "Sở Giao thông vận tải Hà Nội",
            date(2020, 5, 6),
            FAR,
        ),
        RegistryDocument(
            DocumentType.VEHICLE_REGISTRATION,
            f"29A{serial:05d}",
            "Công an Hà Nội",
            date(2021, 7, 8),
            None,
        ),
        RegistryDocument(
            DocumentType.HEALTH_INSURANCE,
            f"DN4{serial:010d}",
            "Bảo hiểm xã hội Hà Nội",
            date(2019, 1, 1),
            date(2019, 12, 31),  # expired
        ),
    )


def _doc(person: RegistryPerson, doc_type: DocumentType) -> RegistryDocument:
    return next(d for d in person.documents if d.doc_type is doc_type)


@dataclass
class Refusal:
    code: grpc.StatusCode
    reason: str | None


def _refused(call: Callable[[], Any]) -> Refusal:
    try:
        call()
    except EidError as e:
        return Refusal(e.code, e.reason)
    raise AssertionError("the call was not refused")


@dataclass
class Counter:
    harness: ServerHarness
    officer_id: str
    key: str
    client: RegistrationOfficeClient

    def person(self, serial: int) -> RegistryPerson:
        """A person the registry enrolled, with documents."""
        person = dataclasses.replace(
            enrolled_person(adult(serial), seed=serial), documents=_documents(serial)
        )
        self.harness.add_people([person])
        return person

    def level2(self, person: RegistryPerson) -> None:
        register_level2_and_activate(
            self.harness, self.client, person, capture_of(person, seed=person_seed(person))
        )


def person_seed(person: RegistryPerson) -> int:
    return int(person.demographics.personal_id[-3:])


@pytest.fixture
def counter(harness: ServerHarness) -> Iterator[Counter]:
    officer, key = harness.run(
        harness.runtime.uow.atomically(
            lambda r: r.officers.create("Công an phường Bến Nghé, quầy 3", harness.clock())
        )
    )
    with RegistrationOfficeClient(harness.target, officer_key=key) as client:
        yield Counter(harness, officer.id, key, client)


def _app(harness: ServerHarness, person: RegistryPerson) -> EidClient:
    app = EidClient(harness.target)
    app.sign_in(personal_id=person.demographics.personal_id, password=PASSWORD)
    return app


def _shown(document: pb.LinkedDocument) -> tuple[Any, ...]:
    return (
        document.type,
        document.number,
        document.issuer,
        document.valid_from,
        document.valid_until,
    )


def _count(harness: ServerHarness) -> int:
    return int(harness.rows("SELECT COUNT(*) FROM account_documents")[0][0])


def test_a_level_2_citizen_links_lists_and_unlinks_documents(
    harness: ServerHarness, counter: Counter
) -> None:
    person = counter.person(501)
    counter.level2(person)
    tax, licence, plate = (
        _doc(person, t)
        for t in (
            DocumentType.TAX_CODE,
            DocumentType.DRIVING_LICENCE,
            DocumentType.VEHICLE_REGISTRATION,
        )
    )
    with _app(harness, person) as app:
        linked = app.link_document("tax_code", tax.number, request_id="link-1").document
        assert _shown(linked) == (
            pb.DOCUMENT_TYPE_TAX_CODE,
            tax.number,
            "Cục Thuế Hà Nội",
            "2015-01-02",
            "",  # valid without end
        )
        assert linked.link_time.seconds > 0
        # The same request id: the first answer, nothing linked twice.
        assert app.link_document("tax_code", tax.number, request_id="link-1").document == linked
        again = _refused(lambda: app.link_document("tax_code", tax.number))
        assert again == Refusal(grpc.StatusCode.ALREADY_EXISTS, "DOCUMENT_ALREADY_LINKED")
        # Written as people write them: case, spaces, hyphens and dots aside.
        spaced = f"{plate.number[:3].lower()}-{plate.number[3:6]}.{plate.number[6:]}"
        shown = app.link_document(pb.DOCUMENT_TYPE_VEHICLE_REGISTRATION, spaced).document
        assert shown.number == plate.number
        app.link_document("driving_licence", licence.number)

        first = app.list_linked_documents(page_size=2)
        assert [d.type for d in first.documents] == [
            pb.DOCUMENT_TYPE_DRIVING_LICENCE,
            pb.DOCUMENT_TYPE_TAX_CODE,
        ]
        assert first.documents[0].valid_until == FAR.isoformat()
        rest = app.list_linked_documents(page_size=2, page_token=first.next_page_token)
        assert [d.number for d in rest.documents] == [plate.number]
        assert rest.next_page_token == ""
        assert licence.number not in base64.urlsafe_b64decode(first.next_page_token).decode()
        assert [_shown(d) for d in app.iter_linked_documents()] == [
            _shown(d) for d in (*first.documents, *rest.documents)
        ]

        gone = app.unlink_document("tax_code", tax.number, request_id="unlink-1").document
        assert _shown(gone) == _shown(linked)
        assert app.unlink_document("tax_code", tax.number, request_id="unlink-1").document == gone
        missing = _refused(lambda: app.unlink_document("tax_code", tax.number))
        assert missing == Refusal(NOT_FOUND, "LINKED_DOCUMENT_NOT_FOUND")
        assert [d.type for d in app.iter_linked_documents()] == [
            pb.DOCUMENT_TYPE_DRIVING_LICENCE,
            pb.DOCUMENT_TYPE_VEHICLE_REGISTRATION,
        ]
    actions = harness.rows(
        "SELECT action, outcome, actor FROM audit_events WHERE action LIKE '%link_doc.%'"
        " ORDER BY seq"
    )
    assert actions == [
        ("link_doc.tax_code", "ok", None),
        ("link_doc.vehicle_registration", "ok", None),
        ("link_doc.driving_licence", "ok", None),
        ("unlink_doc.tax_code", "ok", None),
    ]


def test_what_cannot_be_linked_and_nothing_tells_whose_a_number_is(
    harness: ServerHarness, counter: Counter, citizen_app: EidClient
) -> None:
    person, other, level1 = counter.person(502), counter.person(503), counter.person(504)
    counter.level2(person)
    register_and_activate(harness, citizen_app, level1.demographics)
    with _app(harness, level1) as app:
        refused = _refused(
            lambda: app.link_document("tax_code", _doc(level1, DocumentType.TAX_CODE).number)
        )
        assert refused == Refusal(PRECONDITION, "LEVEL_2_REQUIRED")

    with _app(harness, person) as app:
        answers: list[EidError] = []
        for number in (_doc(other, DocumentType.TAX_CODE).number, "8099999999"):
            with pytest.raises(EidError) as caught:
                app.link_document("tax_code", number)
            answers.append(caught.value)
        theirs, nobodys = answers
        assert (theirs.code, theirs.reason) == (NOT_FOUND, "DOCUMENT_NOT_FOUND")
        assert (theirs.code, theirs.reason, str(theirs)) == (
            nobodys.code,
            nobodys.reason,
            str(nobodys),
        )
        # A real number of one type is not found under another.
        mistyped = _refused(
            lambda: app.link_document(
                "social_insurance", _doc(person, DocumentType.TAX_CODE).number
            )
        )
        assert mistyped == Refusal(NOT_FOUND, "DOCUMENT_NOT_FOUND")
        expired = _refused(
            lambda: app.link_document(
                "health_insurance", _doc(person, DocumentType.HEALTH_INSURANCE).number
            )
        )
        assert expired == Refusal(PRECONDITION, "DOCUMENT_EXPIRED")

        stub_request = pb.LinkDocumentRequest(request_id="bad-1", number="80 1")
        with pytest.raises(grpc.RpcError) as raw:
            app._stub.LinkDocument(
                stub_request, metadata=(("authorization", f"Bearer {app.session_token}"),)
            )
        assert raw.value.code() == INVALID
        violations = _violations(raw.value)
        assert violations == [
            ("type", "DOCUMENT_TYPE_UNSPECIFIED"),
            ("number", "DOCUMENT_NUMBER_INVALID"),
        ]
        for bad in ("12", "A" * 21, "80123456789é", "8012345678" + "-" * 60):
            with pytest.raises(EidError) as caught:
                app.link_document("tax_code", bad)
            assert Refusal(caught.value.code, caught.value.reason) == Refusal(
                INVALID, "DOCUMENT_NUMBER_INVALID"
            )
    with EidClient(harness.target) as nobody:
        no_session = _refused(lambda: nobody.list_linked_documents(session_token="not-a-token"))
        assert no_session == Refusal(grpc.StatusCode.UNAUTHENTICATED, "SESSION_INVALID")
    assert _count(harness) == 0


def _violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    found = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found += [(v.field, v.reason) for v in bad.field_violations]
    return found


def test_sixteen_concurrent_duplicates_link_once(harness: ServerHarness, counter: Counter) -> None:
    person = counter.person(505)
    counter.level2(person)
    number = _doc(person, DocumentType.DRIVING_LICENCE).number
    with _app(harness, person) as app:

        def link(i: int) -> str:
            try:
                app.link_document("driving_licence", number, request_id=f"dup-{i}")
            except EidError as e:
                return str(e.reason)
            return "linked"

        with ThreadPoolExecutor(16) as pool:
            outcomes = list(pool.map(link, range(16)))
        assert sorted(outcomes) == ["DOCUMENT_ALREADY_LINKED"] * 15 + ["linked"]
        assert len(app.list_linked_documents().documents) == 1
    assert _count(harness) == 1


def test_an_officer_links_at_the_counter_under_their_own_id(
    harness: ServerHarness, counter: Counter, citizen_app: EidClient
) -> None:
    person, level1 = counter.person(506), counter.person(507)
    registered_only = counter.person(508)
    counter.level2(person)
    register_and_activate(harness, citizen_app, level1.demographics)
    tax = _doc(person, DocumentType.TAX_CODE)
    pid = person.demographics.personal_id

    linked = counter.client.link_document_for_citizen(
        personal_id=pid, document_type="tax_code", number=tax.number, request_id="c-1"
    ).document
    assert (linked.type, linked.number) == (pb.DOCUMENT_TYPE_TAX_CODE, tax.number)
    again = counter.client.link_document_for_citizen(
        personal_id=pid, document_type="tax_code", number=tax.number, request_id="c-1"
    )
    assert again.document == linked
    # Registered at the counter, not activated yet: the officer may link already.
    register_level2(counter.client, registered_only, capture_of(registered_only, seed=8))
    pending = counter.client.link_document_for_citizen(
        personal_id=registered_only.demographics.personal_id,
        document_type="driving_licence",
        number=_doc(registered_only, DocumentType.DRIVING_LICENCE).number,
    )
    assert pending.document.type == pb.DOCUMENT_TYPE_DRIVING_LICENCE

    def officer_link(who: RegistryPerson, doc_type: DocumentType, number: str = "") -> Refusal:
        return _refused(
            lambda: counter.client.link_document_for_citizen(
                personal_id=who.demographics.personal_id,
                document_type=doc_type.value,
                number=number or _doc(who, doc_type).number,
            )
        )

    assert officer_link(level1, DocumentType.TAX_CODE) == Refusal(PRECONDITION, "LEVEL_2_REQUIRED")
    assert officer_link(person, DocumentType.TAX_CODE) == Refusal(
        grpc.StatusCode.ALREADY_EXISTS, "DOCUMENT_ALREADY_LINKED"
    )
    assert officer_link(
        person, DocumentType.TAX_CODE, _doc(level1, DocumentType.TAX_CODE).number
    ) == Refusal(NOT_FOUND, "DOCUMENT_NOT_FOUND")
    stranger = counter.person(509)
    assert officer_link(stranger, DocumentType.TAX_CODE) == Refusal(NOT_FOUND, "ACCOUNT_NOT_FOUND")

    _, unlock_key = harness.run(
        harness.runtime.uow.atomically(
            lambda r: r.officers.create(
                "Officer Lý", harness.clock(), frozenset({OfficerRole.UNLOCK})
            )
        )
    )
    _, party_key = harness.create_party("Ngân hàng")
    licence = _doc(person, DocumentType.DRIVING_LICENCE)
    with (
        RegistrationOfficeClient(harness.target, officer_key=unlock_key) as unlocker,
        _app(harness, person) as app,
    ):
        no_role = _refused(
            lambda: unlocker.link_document_for_citizen(
                personal_id=pid, document_type="driving_licence", number=licence.number
            )
        )
        assert no_role == Refusal(DENIED, "OFFICER_ROLE_MISSING")
        request = rpb.LinkDocumentForCitizenRequest(
            personal_id=pid, type=pb.DOCUMENT_TYPE_DRIVING_LICENCE, number=licence.number
        )
        stub = rpb_grpc.RegistrationOfficeServiceStub(grpc.insecure_channel(harness.target))
        for metadata in (
            (("authorization", f"Bearer {app.session_token}"),),
            (("x-api-key", party_key),),
        ):
            with pytest.raises(grpc.RpcError) as caught:
                stub.LinkDocumentForCitizen(request, metadata=metadata, timeout=10)
            assert caught.value.code() == DENIED
        # The citizen sees what the officer linked.
        assert [d.number for d in app.iter_linked_documents()] == [tax.number]

    rows = harness.rows(
        "SELECT action, outcome, reason, actor FROM audit_events WHERE action LIKE 'link_doc.%'"
    )
    officer = counter.officer_id
    assert sorted(rows, key=repr) == sorted(
        [
            ("link_doc.tax_code", "ok", None, officer),
            ("link_doc.driving_licence", "ok", None, officer),
            ("link_doc.tax_code", "rejected", "LEVEL_2_REQUIRED", officer),
            ("link_doc.tax_code", "rejected", "DOCUMENT_ALREADY_LINKED", officer),
            ("link_doc.tax_code", "rejected", "DOCUMENT_NOT_FOUND", officer),
            ("link_doc.tax_code", "rejected", "ACCOUNT_NOT_FOUND", officer),
        ],
        key=repr,
    )
    linked_by = harness.rows("SELECT linked_by FROM account_documents ORDER BY linked_by")
    assert linked_by == [(officer,), (officer,)]
    checked = harness.run(verify_audit_chains(harness.runtime.uow))
    assert checked.intact and checked.events >= len(rows)


@dataclass
class Parties:
    documents: EidClient  # basic and the tax code and driving licence scopes
    plain: EidClient  # every attribute but documents


@pytest.fixture
def parties(harness: ServerHarness) -> Iterator[Parties]:
    allowed = frozenset(Attribute) - DOCUMENT_ATTRIBUTES
    _, with_docs = harness.create_party(
        "Ngân hàng", allowed | {Attribute.TAX_CODE, Attribute.DRIVING_LICENCE}
    )
    _, without = harness.create_party("Nhà mạng", allowed)
    with (
        EidClient(harness.target, api_key=with_docs) as documents,
        EidClient(harness.target, api_key=without) as plain,
    ):
        yield Parties(documents, plain)


def _types(verified: pb.VerifyResponse) -> list[int]:
    assert verified.verified
    return [d.type for d in verified.attributes.documents]


def test_parties_see_documents_only_under_their_scopes_in_every_mode(
    harness: ServerHarness, counter: Counter, parties: Parties
) -> None:
    person = counter.person(510)
    counter.level2(person)
    pid = person.demographics.personal_id
    tax, plate = (
        _doc(person, DocumentType.TAX_CODE),
        _doc(person, DocumentType.VEHICLE_REGISTRATION),
    )
    with _app(harness, person) as app:
        app.link_document("tax_code", tax.number)
        app.link_document("vehicle_registration", plate.number)
        bank, telco = parties.documents, parties.plain

        # Password: everything the party may read by default (no licence is
        # linked; the plate is beyond its scopes), only the asked-for scopes
        # when it names some.
        everything = bank.verify_password(personal_id=pid, password=PASSWORD)
        assert _types(everything) == [TAX]
        [released] = everything.attributes.documents
        assert (released.number, released.issuer, released.valid_until) == (
            tax.number,
            tax.issuer,
            "",
        )
        asked = bank.verify_password(
            personal_id=pid, password=PASSWORD, requested_scopes=["basic", "documents.tax_code"]
        )
        assert _types(asked) == [TAX] and asked.attributes.full_name
        basic = bank.verify_password(personal_id=pid, password=PASSWORD, requested_scopes=["basic"])
        assert _types(basic) == []
        assert _types(telco.verify_password(personal_id=pid, password=PASSWORD)) == []
        beyond = _refused(
            lambda: telco.verify_password(
                personal_id=pid, password=PASSWORD, requested_scopes=["documents.tax_code"]
            )
        )
        assert beyond == Refusal(DENIED, "SCOPE_NOT_ALLOWED")
        plate_asked = _refused(
            lambda: bank.verify_password(
                personal_id=pid,
                password=PASSWORD,
                requested_scopes=["documents.vehicle_registration"],
            )
        )
        assert plate_asked == Refusal(DENIED, "SCOPE_NOT_ALLOWED")

        # One-time code.
        seen = len(harness.sender.messages)
        bank.request_otp(pid)
        code = harness.wait_for_code(phone_of(person.demographics)[1], after=seen)
        by_code = bank.verify_one_time_code(
            pid, code, requested_scopes=["documents.tax_code", "documents.driving_licence"]
        )
        assert _types(by_code) == [TAX]

        # Approval: the citizen is shown the documents asked for and consents.
        started = bank.start_approval(pid, requested_scopes=["id_number", "documents.tax_code"])
        [shown] = app.list_approval_requests().approval_requests
        assert list(shown.attributes) == [pb.ATTRIBUTE_PERSONAL_ID, pb.ATTRIBUTE_TAX_CODE]
        app.approve(started.approval_id, started.verification_code)
        approved = bank.verify_approval(started.approval_id)
        assert _types(approved) == [TAX] and approved.attributes.personal_id == pid
        started = bank.start_approval(pid, requested_scopes=["basic"])
        app.approve(started.approval_id, started.verification_code)
        assert _types(bank.verify_approval(started.approval_id)) == []

        # An online share of the tax code and the plate: each party sees what
        # its scopes allow of it.
        share = app.share_via_qr(
            attributes=["full_name", "tax_code", "vehicle_registration"], multi_use=True
        )
        assert _types(bank.redeem_share(share.token)) == [TAX]
        assert _types(telco.redeem_share(share.token)) == []
        name_only = app.share_via_qr(attributes=["full_name"])
        assert _types(bank.redeem_share(name_only.token)) == []
        [listed] = [s for s in app.list_shares().shares if s.share_id == share.share_id]
        assert pb.ATTRIBUTE_TAX_CODE in listed.attributes

        # Offline: refused, with the reason.
        with pytest.raises(EidError) as offline:
            app.share_via_qr(attributes=["full_name", "tax_code"], mode="offline")
        assert (offline.value.code, offline.value.reason) == (
            INVALID,
            "SHARE_DOCUMENTS_ONLINE_ONLY",
        )
        # Unlinked: released to nobody from then on, the share included.
        app.unlink_document("tax_code", tax.number)
        assert _types(bank.verify_password(personal_id=pid, password=PASSWORD)) == []
        assert _types(bank.redeem_share(share.token)) == []

        history = app.list_access_history(page_size=100).records
        with_tax = [r for r in history if pb.ATTRIBUTE_TAX_CODE in r.attributes]
        assert len(with_tax) == 5  # password twice, the code, the approval, the share
    assert LICENCE not in _types(everything)


def test_no_document_number_is_stored_in_clear(
    harness: ServerHarness, counter: Counter, database_url: str
) -> None:
    person = counter.person(511)
    counter.level2(person)
    numbers = [d.number for d in person.documents]
    with _app(harness, person) as app:
        for doc in person.documents:
            if doc.valid_until is None or doc.valid_until >= TODAY:
                app.link_document(doc.doc_type.value, doc.number)
    assert _count(harness) == 3

    dump = _dump(harness, database_url)

    assert len(dump) > 10_000
    for number in numbers:
        assert number.encode() not in dump
    assert "Cục Thuế Hà Nội".encode() not in dump
    assert person.demographics.full_name.encode() not in dump
