"""A death recorded with `eid-server registry mark-deceased` against a real
server's database: the account is deactivated at once (no sign-in, its
session ends), Verify tells CITIZEN_DECEASED only to a party that proved the
password, and Register answers as for someone not in the registry."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from eid.v1 import identity_service_pb2 as pb
from eid_client.client import EidClient
from eid_client.errors import EidError
from eid_service.cli import main as eid_server
from eid_service.domain.citizen import Demographics
from eid_service.security.keys import save_key_ring
from tests.integration.conftest import Party
from tests.integration.flows import PASSWORD, register, register_and_activate
from tests.integration.harness import ServerHarness


def _mark_deceased(
    harness: ServerHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *argv: str
) -> int:
    """The operator's command, as its own process would run it: same database, same keys."""
    keys = tmp_path / "keys.json"
    if not keys.exists():
        save_key_ring(harness.key_ring, keys)
    monkeypatch.setenv("EID_DATABASE_URL", harness.database_url)
    monkeypatch.setenv("EID_KEYS_FILE", str(keys))
    return eid_server(["registry", "mark-deceased", *argv])


def _refusal(call: pytest.ExceptionInfo[EidError]) -> tuple[grpc.StatusCode, str | None]:
    return call.value.code, call.value.reason


def test_a_recorded_death_deactivates_the_account_and_is_told_only_after_proof(
    harness: ServerHarness,
    citizen_app: EidClient,
    bank: Party,
    adults: list[Demographics],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    citizen, other = adults[0], adults[1]
    register_and_activate(harness, citizen_app, citizen)
    citizen_app.sign_in(personal_id=citizen.personal_id, password=PASSWORD)
    assert bank.client.verify_password(personal_id=citizen.personal_id, password=PASSWORD).verified

    status = _mark_deceased(
        harness, tmp_path, monkeypatch, "--id", citizen.personal_id, "--date", "2026-01-02"
    )
    assert status == 0
    assert "deactivated" in capsys.readouterr().out

    with pytest.raises(EidError) as told:
        bank.client.verify_password(personal_id=citizen.personal_id, password=PASSWORD)
    assert _refusal(told) == (grpc.StatusCode.FAILED_PRECONDITION, "CITIZEN_DECEASED")
    wrong = bank.client.verify_password(personal_id=citizen.personal_id, password="not it at all")
    assert not wrong.verified
    with pytest.raises(EidError) as session_gone:
        citizen_app.list_sessions()
    assert _refusal(session_gone) == (grpc.StatusCode.UNAUTHENTICATED, "SESSION_INVALID")
    with pytest.raises(EidError) as no_sign_in:
        citizen_app.sign_in(personal_id=citizen.personal_id, password=PASSWORD)
    assert _refusal(no_sign_in)[1] == "CITIZEN_DECEASED"
    state = harness.rows("SELECT state FROM accounts")
    assert state == [("deactivated",)]
    assert pb.ACCOUNT_STATE_DEACTIVATED == 4

    # A record with no account: Register answers as for a stranger.
    assert (
        _mark_deceased(
            harness, tmp_path, monkeypatch, "--id", other.personal_id, "--date", "2026-01-02"
        )
        == 0
    )
    with pytest.raises(EidError) as deceased:
        register(citizen_app, other)
    with pytest.raises(EidError) as stranger:
        register(citizen_app, other, full_name="Người Không Có")
    assert _refusal(deceased) == _refusal(stranger)
    assert str(deceased.value) == str(stranger.value)

    # Again: nothing more to record.
    assert (
        _mark_deceased(
            harness, tmp_path, monkeypatch, "--id", other.personal_id, "--date", "2026-01-02"
        )
        == 1
    )
    assert "CITIZEN_NOT_FOUND" in capsys.readouterr().out
