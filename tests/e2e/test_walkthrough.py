"""README's walkthrough, end to end, against a server started as its own process."""

from __future__ import annotations

import signal
import subprocess

import pytest

from tests.e2e.conftest import Deployment

pytestmark = pytest.mark.e2e

ID, NAME, BORN, GENDER = "001190791514", "Nguyễn Thị Lan", "1990-05-17", "female"
PHONE, PHONE_E164 = "0912345678", "+84912345678"
PASSWORD = "correct horse battery staple"


def test_register_activate_verify_share_redeem(deployment: Deployment) -> None:
    d = deployment
    # As README: password verification is allowed explicitly.
    created = d.admin("party", "create", "--name", "Demo Bank", "--modes", "password,qr_share")
    api_key = created.strip().splitlines()[-1]
    assert api_key.startswith("eidk_")

    registered = d.eid_json(
        "register",
        "--id",
        ID,
        "--name",
        NAME,
        "--birth-date",
        BORN,
        "--gender",
        GENDER,
        "--phone",
        PHONE,
    )
    assert registered["account"]["state"] == "ACCOUNT_STATE_PENDING"

    code = d.latest_code(PHONE_E164)
    activated = d.eid_json("activate", "--id", ID, "--code", code, "--password", PASSWORD)
    assert activated["account"]["state"] == "ACCOUNT_STATE_ACTIVE"

    reused = d.eid("activate", "--id", ID, "--code", code, "--password", PASSWORD, check=False)
    assert reused.returncode == 1
    assert "ACTIVATION_CODE_ALREADY_USED" in reused.stderr

    verified = d.eid_json("--api-key", api_key, "verify", "--id", ID, "--password", PASSWORD)
    assert verified["verified"] is True
    assert verified["attributes"]["full_name"] == NAME

    wrong = d.eid_json("--api-key", api_key, "verify", "--id", ID, "--password", "not it at all")
    assert wrong["verified"] is False
    assert wrong.get("attributes", {}) == {}

    no_key = d.eid(
        "--api-key", "eidk_bogus", "verify", "--id", ID, "--password", PASSWORD, check=False
    )
    assert no_key.returncode == 1
    assert "UNAUTHENTICATED API_KEY_INVALID" in no_key.stderr

    qr_file = d.workdir / "share.png"
    shared = d.eid_json(
        "share",
        "--id",
        ID,
        "--password",
        PASSWORD,
        "--attributes",
        "full_name,birth_date",
        "--qr-out",
        str(qr_file),
    )
    assert qr_file.read_bytes().startswith(b"\x89PNG")
    token = shared["token"]

    redeemed = d.eid_json("--api-key", api_key, "redeem", token)
    assert redeemed["verified"] is True
    assert redeemed["attributes"]["birth_date"] == BORN
    assert redeemed["attributes"]["personal_id"] == ""  # not shared

    again = d.eid("--api-key", api_key, "redeem", token, check=False)
    assert again.returncode == 1
    assert "SHARE_ALREADY_REDEEMED" in again.stderr

    tampered = d.eid("--api-key", api_key, "redeem", token[:-3] + "AAA", check=False)
    assert tampered.returncode == 1
    assert "SHARE_SIGNATURE_INVALID" in tampered.stderr


def test_sigterm_drains_and_exits_cleanly(deployment: Deployment) -> None:
    deployment.server.send_signal(signal.SIGTERM)
    try:
        status = deployment.server.wait(20)
    except subprocess.TimeoutExpired:  # pragma: no cover - reported as failure
        raise AssertionError("the server did not stop within 20 s of SIGTERM") from None
    assert status == 0
    assert deployment.eid("health", check=False).returncode != 0


def test_logs_carry_no_personal_data(deployment: Deployment) -> None:
    d = deployment
    d.eid(
        "register",
        "--id",
        ID,
        "--name",
        NAME,
        "--birth-date",
        BORN,
        "--gender",
        GENDER,
        "--phone",
        PHONE,
    )
    code = d.latest_code(PHONE_E164)
    d.eid("activate", "--id", ID, "--code", code, "--password", PASSWORD)
    bad = d.eid(
        "register",
        "--id",
        "12345",
        "--name",
        NAME,
        "--birth-date",
        BORN,
        "--gender",
        GENDER,
        "--phone",
        PHONE,
        check=False,
    )
    assert bad.returncode == 1
    d.server.send_signal(signal.SIGTERM)
    d.server.wait(20)
    assert d.server.stderr is not None
    logs = d.server.stderr.read().decode("utf-8")
    assert "Register" in logs  # the access log is there...
    for secret in (ID, NAME, PHONE_E164[3:], code, PASSWORD, "98765432101"):
        assert secret not in logs  # ...but none of the data
