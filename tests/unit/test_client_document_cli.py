"""`eid documents link|list|unlink`, the SDK's document calls, and linked
documents in `eid verify`'s output, against a fake server."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest

from eid.v1 import identity_service_pb2 as pb
from eid_client._verify_requests import parse_scope
from eid_client.cli import main
from eid_client.client import EidClient
from tests.unit.client_cli_kit import fresh_terminal
from tests.unit.test_client_calls import FakeEid

TAX = pb.LinkedDocument(
    type=pb.DOCUMENT_TYPE_TAX_CODE,
    number="8012345678",
    issuer="Cục Thuế Hà Nội",
    valid_from="2015-01-02",
)
LICENCE = pb.LinkedDocument(
    type=pb.DOCUMENT_TYPE_DRIVING_LICENCE,
    number="010112345678",
    issuer="Sở Giao thông vận tải Hà Nội",
    valid_from="2020-05-06",
    valid_until="2030-05-06",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh_terminal(monkeypatch)


@pytest.fixture
def fake() -> Iterator[tuple[FakeEid, str]]:
    eid = FakeEid(
        LinkDocument=pb.LinkDocumentResponse(document=TAX),
        UnlinkDocument=pb.UnlinkDocumentResponse(document=TAX),
        ListLinkedDocuments=pb.ListLinkedDocumentsResponse(documents=[LICENCE, TAX]),
        Verify=pb.VerifyResponse(
            verified=True,
            method=pb.VERIFICATION_METHOD_PASSWORD,
            attributes=pb.CitizenAttributes(full_name="Võ Thị Bích Ngọc", documents=[TAX]),
        ),
    )
    with eid.serve() as target:
        yield eid, target


def run(target: str, *argv: str) -> int:
    return main(["--target", target, *argv])


def test_link_and_unlink_send_the_type_and_number_with_the_session(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]
) -> None:
    eid, target = fake
    argv = ["documents", "link", "tax_code", "80-1234 5678", "--session", "access-1"]
    assert run(target, *argv, "--request-id", "link-1") == 0
    call = eid.only("LinkDocument")
    assert (call.request.type, call.request.number) == (pb.DOCUMENT_TYPE_TAX_CODE, "80-1234 5678")
    assert call.request.request_id == "link-1"
    assert call.metadata["authorization"] == "Bearer access-1"
    shown = capsys.readouterr().out
    assert "8012345678" in shown and "Cục Thuế Hà Nội" in shown and "no end" in shown

    assert run(target, "documents", "unlink", "tax_code", "8012345678", "--session", "a-1") == 0
    assert eid.only("UnlinkDocument").request.type == pb.DOCUMENT_TYPE_TAX_CODE
    assert "Unlinked" in capsys.readouterr().out
    assert run(target, "documents", "link", "passport", "B1234567", "--session", "a-1") == 2
    assert "invalid choice" in capsys.readouterr().err
    assert run(target, "documents", "link", "tax_code", "8012345678") == 2
    assert "EID_SESSION" in capsys.readouterr().err


def test_list_shows_every_document_and_json(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, target = fake
    assert run(target, "documents", "list", "--session", "access-1") == 0
    table = capsys.readouterr().out
    assert "Driving licence" in table and "2030-05-06" in table and "Tax code" in table
    assert run(target, "--json", "documents", "list", "--session", "access-1") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [d["number"] for d in listed["documents"]] == [LICENCE.number, TAX.number]


def test_verify_prints_released_documents_and_asks_for_documents_scopes(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]
) -> None:
    eid, target = fake
    argv = ["--api-key", "k", "verify", "--id", "001190791514", "--password-stdin"]
    argv += ["--scopes", "basic,documents.tax_code"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdin", io.StringIO("mật khẩu dài đủ\n"))
        assert run(target, *argv) == 0
    request = eid.only("Verify").request
    assert list(request.requested_scopes) == [pb.SCOPE_BASIC, pb.SCOPE_DOCUMENTS_TAX_CODE]
    out = capsys.readouterr().out
    assert "Tax code" in out and "8012345678 (Cục Thuế Hà Nội; valid 2015-01-02 to no end)" in out


def test_the_sdk_names_document_types_and_scopes_every_way(
    fake: tuple[FakeEid, str],
) -> None:
    eid, target = fake
    with EidClient(target) as client:
        for name in ("tax_code", "TAX_CODE", "DOCUMENT_TYPE_TAX_CODE", pb.DOCUMENT_TYPE_TAX_CODE):
            client.link_document(name, "8012345678", session_token="s")
        with pytest.raises(ValueError, match="unknown document type"):
            client.link_document("unspecified", "8012345678", session_token="s")
        assert [d.number for d in client.iter_linked_documents(session_token="s")] == [
            LICENCE.number,
            TAX.number,
        ]
    assert {c.request.type for c in eid.calls if c.method == "LinkDocument"} == {
        pb.DOCUMENT_TYPE_TAX_CODE
    }
    for spelt in ("documents.tax_code", "SCOPE_DOCUMENTS_TAX_CODE", pb.SCOPE_DOCUMENTS_TAX_CODE):
        assert parse_scope(spelt) == pb.SCOPE_DOCUMENTS_TAX_CODE
