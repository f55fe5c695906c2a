"""README's walkthrough, end to end, against a server started as its own process."""

from __future__ import annotations

import base64
import signal
import subprocess

import pytest

from tests.e2e.conftest import Deployment

pytestmark = pytest.mark.e2e

ID, NAME, BORN, GENDER = "001190791514", "Nguyễn Thị Lan", "1990-05-17", "female"
PHONE, PHONE_E164 = "0912345678", "+84912345678"
PASSWORD = "correct horse battery staple"
FOREIGNER = "900000100001"  # Kim Min-jun's assigned number


def test_register_activate_verify_share_redeem(deployment: Deployment) -> None:
    d = deployment
    # As README: password verification is allowed explicitly.
    created = d.admin("party", "create", "--name", "Demo Bank", "--modes", "password,qr_share")
    api_key = created.strip().splitlines()[-1]
    assert api_key.startswith("eidk_")

    # The app's capture of Lan's face (a development helper, as README says).
    d.admin("demo-portrait", "--id", ID, "--out", "face.f32")
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
        "--portrait",
        "face.f32",
    )
    assert registered["account"]["state"] == "ACCOUNT_STATE_PENDING"
    assert registered["personal_id"] == ID

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


def test_a_foreigner_registers_with_the_passport_and_signs_in_with_the_assigned_number(
    deployment: Deployment,
) -> None:
    """README's foreigner steps: Kim Min-jun of the demo registry."""
    d = deployment
    created = d.admin("party", "create", "--name", "Demo Bank", "--modes", "password,qr_share")
    api_key = created.strip().splitlines()[-1]
    listed = d.admin("demo-citizens")
    assert "Kim Min-jun" in listed and "KOR M12345678" in listed
    d.admin("demo-portrait", "--id", FOREIGNER, "--out", "kim.f32")
    registered = d.eid_json(
        "register",
        *("--passport", "M12345678", "--nationality", "KOR"),
        *("--passport-issue-date", "2019-03-04", "--passport-issue-place", "Seoul"),
        *("--name", "Kim Min-jun", "--birth-date", "1988-07-21", "--gender", "male"),
        *("--phone", "0912000111", "--portrait", "kim.f32"),
    )
    assert registered["personal_id"] == FOREIGNER
    code = d.latest_code("+84912000111")
    d.eid("activate", "--id", FOREIGNER, "--code", code, "--password", PASSWORD)
    verified = d.eid_json("--api-key", api_key, "verify", "--id", FOREIGNER, "--password", PASSWORD)
    assert verified["verified"] is True
    assert verified["attributes"]["nationality"] == "KOR"


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
    d.admin("demo-portrait", "--id", ID, "--out", "face.f32")
    portrait = (d.workdir / "face.f32").read_bytes()
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
        "--portrait",
        "face.f32",
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
        "--portrait",
        "face.f32",
        check=False,
    )
    assert bad.returncode == 1
    d.server.send_signal(signal.SIGTERM)
    d.server.wait(20)
    assert d.server.stderr is not None
    logs = d.server.stderr.read().decode("utf-8")
    assert "Register" in logs  # the access log is there...
    for secret in (ID, NAME, PHONE_E164[3:], code, PASSWORD, "98765432101", portrait.hex()):
        assert secret not in logs  # ...but none of the data
    assert base64.b64encode(portrait).decode()[:40] not in logs
