"""`eid-server audit verify` as an operator runs it, on the SQLite file that
`init-dev`, `migrate`, `load-demo` and `serve --workers 2` made and served:
intact (exit 0) after real calls, then, with one row edited behind the
server's back, exit 1 and the broken seq named in the table and the JSON."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from typing import Any

import pytest

from eid.v1 import identity_service_pb2 as pb
from eid_client.errors import EidError
from tests.e2e.conftest import BIN, Deployment, Device
from tests.e2e.test_account_life import ID, PASSWORD, PHONE_E164, _activate, _register

pytestmark = pytest.mark.e2e


def _audit_verify(d: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "eid-server"), "audit", "verify", *args],
        cwd=d.workdir,
        env={**d.env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _verify(device: Device, api_key: str, password: str) -> Any:
    request = pb.VerifyRequest(password=pb.PasswordCredential(personal_id=ID, password=password))
    return device("Verify", request, x_api_key=api_key)


def test_audit_verify_passes_then_names_an_edited_event(
    deployment: Deployment, devices: list[Device]
) -> None:
    d = deployment
    app, bank = devices[0], devices[1]
    created = d.admin("party", "create", "--name", "Demo Bank", "--modes", "password")
    api_key = created.strip().splitlines()[-1]
    _register(app)
    assert not isinstance(_activate(app, d.latest_code(PHONE_E164)), EidError)
    assert _verify(bank, api_key, PASSWORD).verified
    rejected = _verify(bank, api_key, "not the password 1")
    assert not rejected.verified and rejected.verification_id

    intact = _audit_verify(d)
    assert intact.returncode == 0, intact.stderr
    assert "1 subject(s), 4 event(s) checked: every audit chain is intact" in intact.stdout
    assert ID not in intact.stdout + intact.stderr

    event_id = rejected.verification_id
    # Someone with write access to the database hides the failed verification.
    with sqlite3.connect(d.workdir / "var" / "eid.db", timeout=10) as db:
        seq, subject = db.execute(
            "SELECT seq, subject FROM audit_events WHERE id = ? AND outcome = 'rejected'",
            (event_id,),
        ).fetchone()
        db.execute("UPDATE audit_events SET outcome = 'verified' WHERE id = ?", (event_id,))
    db.close()

    table = _audit_verify(d)
    assert table.returncode == 1, table.stderr
    row = next(line for line in table.stdout.splitlines() if event_id in line)
    assert bytes(subject).hex()[:12] in row
    assert f" {seq} " in row and "digest_mismatch" in row and "edited: its fields" in row
    assert "4 event(s) checked: 1 chain(s) broken" in table.stdout
    assert ID not in table.stdout + table.stderr

    machine = _audit_verify(d, "--json")
    assert machine.returncode == 1
    report = json.loads(machine.stdout)
    assert report["intact"] is False
    assert [(b["seq"], b["event_id"], b["kind"]) for b in report["broken"]] == [
        (seq, event_id, "digest_mismatch")
    ]
