"""`eid dependant-add`, `eid dependants` and `eid share --dependant` against a fake server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from eid.v1 import identity_service_pb2 as pb
from eid_client.cli import main
from tests.unit.client_cli_kit import fresh_terminal
from tests.unit.test_client_calls import FakeEid

KHANG = pb.Dependant(
    account=pb.Account(
        account_id="acc_" + "1" * 26,
        state=pb.ACCOUNT_STATE_DEPENDANT,
        guardian_account_id="acc_" + "9" * 26,
    ),
    attributes=pb.CitizenAttributes(
        personal_id="079215000123",
        full_name="Phạm Minh Khang",
        birth_date="2015-03-10",
        gender=pb.GENDER_MALE,
    ),
    take_over_date="2029-03-10",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh_terminal(monkeypatch)


@pytest.fixture
def fake() -> Iterator[tuple[FakeEid, str]]:
    eid = FakeEid(
        RegisterDependant=pb.RegisterDependantResponse(dependant=KHANG),
        ListDependants=pb.ListDependantsResponse(dependants=[KHANG]),
        ShareViaQR=pb.ShareViaQRResponse(share_id="shr_1", token="eid2.x"),
    )
    with eid.serve() as target:
        yield eid, target


def run(target: str, *argv: str) -> int:
    return main(["--target", target, *argv])


def test_dependant_add_sends_the_child_with_the_session(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]
) -> None:
    eid, target = fake
    argv = ["dependant-add", "--session", "access-1", "--id", "079215000123"]
    argv += ["--name", "Phạm Minh Khang", "--birth-date", "2015-03-10", "--gender", "male"]
    assert run(target, *argv) == 0
    call = eid.only("RegisterDependant")
    assert (call.request.personal_id, call.request.gender) == ("079215000123", pb.GENDER_MALE)
    assert call.metadata["authorization"] == "Bearer access-1"
    captured = capsys.readouterr()
    assert "Phạm Minh Khang" in captured.out and "DEPENDANT" in captured.out
    assert f"eid share --dependant {KHANG.account.account_id}" in captured.err


def test_dependants_lists_them_and_needs_a_session(
    fake: tuple[FakeEid, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, target = fake
    assert run(target, "--json", "dependants", "--session", "access-1") == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["dependants"][0]["take_over_date"] == "2029-03-10"
    assert run(target, "dependants", "--session", "access-1") == 0
    assert "2029-03-10" in capsys.readouterr().out
    assert run(target, "dependants") == 2
    assert "EID_SESSION" in capsys.readouterr().err


def test_share_for_a_dependant(fake: tuple[FakeEid, str]) -> None:
    eid, target = fake
    argv = ["--json", "share", "--session", "s", "--dependant", KHANG.account.account_id]
    assert run(target, *argv) == 0
    assert eid.only("ShareViaQR").request.dependant_account_id == KHANG.account.account_id
