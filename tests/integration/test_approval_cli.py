"""The approval flow as people run it: the `eid` CLI of a relying party and
of a citizen against a real server, and the asyncio client."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eid_client import AsyncEidClient
from eid_client.cli import main as eid
from eid_client.client import EidClient
from eid_client.errors import EidError
from eid_service.domain.citizen import Demographics
from tests.integration.conftest import Party
from tests.integration.flows import PASSWORD, register_and_activate
from tests.integration.harness import ServerHarness


@pytest.fixture
def phone(harness: ServerHarness, citizen_app: EidClient, adult: Demographics) -> EidClient:
    register_and_activate(harness, citizen_app, adult)
    citizen_app.sign_in(personal_id=adult.personal_id, password=PASSWORD)
    return citizen_app


def test_the_cli_walks_a_party_and_a_citizen_through_the_flow(
    harness: ServerHarness,
    bank: Party,
    phone: EidClient,
    adult: Demographics,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    assert phone.session_token is not None
    monkeypatch.setenv("EID_SESSION", phone.session_token)
    monkeypatch.setenv("COLUMNS", "200")
    as_party = ["--target", harness.target, "--api-key", bank.api_key]
    as_citizen = ["--target", harness.target]

    assert eid([*as_party, "--json", "approval", "start", "--id", adult.personal_id]) == 0
    started = json.loads(capsys.readouterr().out)
    approval_id, code = started["approval_id"], started["verification_code"]

    assert eid([*as_citizen, "approvals"]) == 0
    listed = capsys.readouterr()
    assert approval_id in listed.out and code in listed.out and "Test Bank" in listed.out
    assert (
        eid([*as_citizen, "approve", approval_id, "--code", "0000" if code != "0000" else "1111"])
        == 1
    )
    refused = capsys.readouterr().err
    assert "VERIFICATION_CODE_WRONG" in refused and "the request is now void" in refused
    # A wrong code voids the request: the party starts another.
    assert eid([*as_party, "--json", "approval", "start", "--id", adult.personal_id]) == 0
    started = json.loads(capsys.readouterr().out)
    approval_id, code = started["approval_id"], started["verification_code"]
    assert eid([*as_citizen, "approve", approval_id, "--code", code]) == 0
    assert "APPROVED" in capsys.readouterr().out

    assert eid([*as_party, "approval", "wait", approval_id, "--scopes", "basic"]) == 0
    verdict = capsys.readouterr()
    assert adult.full_name in verdict.out and "eyJ" in verdict.out  # the attributes, the receipt
    assert eid([*as_party, "approval", "wait", approval_id]) == 1
    used = capsys.readouterr().err
    assert "APPROVAL_ALREADY_USED" in used and "request_id" in used

    image = tmp_path / "login.png"
    assert eid([*as_party, "approval", "start", "--qr", "--png", str(image)]) == 0
    assert "QR image" in capsys.readouterr().out
    assert eid([*as_citizen, "--json", "claim", "--image", str(image)]) == 0
    claimed = json.loads(capsys.readouterr().out)["approval_request"]
    assert eid([*as_citizen, "decline", claimed["approval_id"]]) == 0
    assert "DECLINED" in capsys.readouterr().out
    assert eid([*as_party, "approval", "wait", claimed["approval_id"]]) == 1
    assert "APPROVAL_DECLINED" in capsys.readouterr().err

    assert eid([*as_citizen, "approval", "start", "--id", adult.personal_id]) == 2
    assert "--api-key" in capsys.readouterr().err
    assert eid([*as_party, "approval", "start", "--id", adult.personal_id, "--png", "x"]) == 2
    assert eid([*as_party, "approval"]) == 2


async def test_the_async_client_waits_for_the_approval(
    harness: ServerHarness, bank: Party, phone: EidClient, adult: Demographics
) -> None:
    async with AsyncEidClient(harness.target, api_key=bank.api_key) as party:
        started = await party.start_approval(adult.personal_id, message="Sign in")
        with pytest.raises(EidError) as pending:
            await party.verify_approval(started.approval_id, wait=0.2)
        assert pending.value.reason == "APPROVAL_PENDING"
        phone.approve(started.approval_id, started.verification_code)
        verified = await party.wait_for_approval(started.approval_id, within=20)
        assert verified.verified and verified.attributes.full_name == adult.full_name
    async with AsyncEidClient(harness.target, session_token=phone.session_token) as app:
        assert [r async for r in app.iter_approval_requests()] == []
