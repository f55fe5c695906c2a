"""The account's life end to end, against `eid-server serve --workers 2` as
its own processes (one SQLite file): the stuck account, the lost phone, and
limits and single use that hold across the two worker processes."""

from __future__ import annotations

import concurrent.futures
import re
from typing import Any

import pytest

from eid.v1 import identity_service_pb2 as pb
from eid_client.errors import EidError
from eid_service.demo import portrait_capture
from tests.e2e.conftest import Deployment, Device

pytestmark = pytest.mark.e2e

ID, NAME, BORN = "001190791514", "Nguyễn Thị Lan", "1990-05-17"
PHONE, PHONE_E164 = "0912345678", "+84912345678"
PASSWORD = "correct horse battery staple"


def _register(device: Device) -> None:
    done = device(
        "Register",
        pb.RegisterRequest(
            personal_id=ID,
            full_name=NAME,
            birth_date=BORN,
            gender=pb.GENDER_FEMALE,
            phone_number=PHONE,
            portrait=portrait_capture(ID),
        ),
    )
    assert not isinstance(done, EidError), done


STRANGER = "203.0.113.66"


def _activate(device: Device, code: str, **metadata: str) -> Any:
    return device(
        "Activate",
        pb.ActivateRequest(personal_id=ID, activation_code=code, new_password=PASSWORD),
        **metadata,
    )


def test_a_stranger_guessing_the_code_does_not_keep_the_account_stuck(
    deployment: Deployment, devices: list[Device]
) -> None:
    app, stranger = devices[0], devices[1]
    _register(app)
    first = deployment.latest_code(PHONE_E164)
    wrong = "000000" if first != "000000" else "111111"
    # A stranger who knows the ID number guesses, from an address of its own,
    # over both workers: slowed after 5, and the citizen's code lives on.
    answers = [_activate(stranger, wrong, x_forwarded_for=STRANGER) for _ in range(6)]
    assert [a.reason for a in answers] == ["ACTIVATION_CODE_INVALID"] * 5 + [
        "TOO_MANY_FAILED_ATTEMPTS"
    ]
    # Before, those guesses spent the code, and the next one, and so on.
    done = _activate(app, first)
    assert not isinstance(done, EidError), done
    assert done.account.state == pb.ACCOUNT_STATE_ACTIVE


def test_the_lost_phone_is_locked_and_an_officer_unlocks(
    deployment: Deployment, devices: list[Device]
) -> None:
    d = deployment
    api_key = d.admin("party", "create", "--name", "Demo Bank").strip().splitlines()[-1]
    created = d.admin("officer", "create", "--name", "Counter 2")
    officer_key = created.strip().splitlines()[-1]
    found = re.search(r"off_[0-9a-f]{16}", created)
    assert found is not None
    officer_id = found.group(0)
    assert officer_key.startswith("eido_")
    lost_phone, laptop, bank = devices[0], devices[1], devices[2]
    _register(lost_phone)
    assert not isinstance(_activate(lost_phone, d.latest_code(PHONE_E164)), EidError)

    session = lost_phone(
        "SignIn", pb.SignInRequest(personal_id=ID, password=PASSWORD, device_name="phone")
    )
    auth = {"authorization": f"Bearer {session.session_token}"}
    share = lost_phone(
        "ShareViaQR", pb.ShareViaQRRequest(attributes=[pb.ATTRIBUTE_FULL_NAME]), **auth
    )
    assert not isinstance(share, EidError), share

    locked = laptop(
        "LockAccount",
        pb.LockAccountRequest(password=pb.LockWithPassword(personal_id=ID, password=PASSWORD)),
    )
    assert not isinstance(locked, EidError), locked
    assert locked.account.state == pb.ACCOUNT_STATE_LOCKED

    # Every session and share is dead at once, whichever worker answers.
    for device in devices:
        again = device(
            "ShareViaQR", pb.ShareViaQRRequest(attributes=[pb.ATTRIBUTE_FULL_NAME]), **auth
        )
        assert isinstance(again, EidError) and again.reason == "SESSION_INVALID"
    redeemed = bank(
        "Verify",
        pb.VerifyRequest(qr_share=pb.QrShareCredential(token=share.token)),
        x_api_key=api_key,
    )
    assert isinstance(redeemed, EidError) and redeemed.reason == "ACCOUNT_LOCKED"
    refused = laptop("SignIn", pb.SignInRequest(personal_id=ID, password=PASSWORD))
    assert isinstance(refused, EidError) and refused.reason == "ACCOUNT_LOCKED"

    unlocked = laptop(
        "UnlockAccount",
        pb.UnlockAccountRequest(officer=pb.UnlockByOfficer(personal_id=ID)),
        x_officer_key=officer_key,
    )
    assert not isinstance(unlocked, EidError), unlocked
    assert unlocked.account.state == pb.ACCOUNT_STATE_ACTIVE
    back = laptop("SignIn", pb.SignInRequest(personal_id=ID, password=PASSWORD))
    assert not isinstance(back, EidError), back

    # A leaked key is stopped at once.
    d.admin("officer", "disable", officer_id)
    stopped = laptop(
        "UnlockAccount",
        pb.UnlockAccountRequest(officer=pb.UnlockByOfficer(personal_id=ID)),
        x_officer_key=officer_key,
    )
    assert isinstance(stopped, EidError) and stopped.reason == "OFFICER_KEY_INVALID"


def test_limits_and_single_use_hold_across_worker_processes(
    deployment: Deployment, devices: list[Device]
) -> None:
    _register(devices[0])
    assert not isinstance(_activate(devices[0], deployment.latest_code(PHONE_E164)), EidError)

    # One lock code a minute for this ID and phone, however many workers answer.
    seen = len(deployment.outbox_lines())

    def ask(device: Device) -> Any:
        return device(
            "SendAccountCode",
            pb.SendAccountCodeRequest(
                purpose=pb.ACCOUNT_CODE_PURPOSE_LOCK, personal_id=ID, phone_number=PHONE
            ),
        )

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        asked = list(pool.map(ask, devices))
    assert sum(not isinstance(a, EidError) for a in asked) == 1
    assert {a.reason for a in asked if isinstance(a, EidError)} == {"TOO_MANY_REQUESTS"}

    # One refresh token, presented on 8 connections at once: one rotation.
    signed = devices[0]("SignIn", pb.SignInRequest(personal_id=ID, password=PASSWORD))

    def refresh(device: Device) -> Any:
        return device(
            "RefreshSession", pb.RefreshSessionRequest(refresh_token=signed.refresh_token)
        )

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        refreshed = list(pool.map(refresh, devices))
    assert sum(not isinstance(a, EidError) for a in refreshed) == 1

    # The lock code works once.
    code = deployment.latest_code(PHONE_E164, after=seen)

    def lock(device: Device) -> Any:
        return device(
            "LockAccount",
            pb.LockAccountRequest(
                one_time_code=pb.LockWithCode(personal_id=ID, one_time_code=code)
            ),
        )

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        locks = list(pool.map(lock, devices))
    assert sum(not isinstance(a, EidError) for a in locks) == 1
    # The others find it used; from one address, past 5 tries, they are also
    # told to wait (code guesses count against the source).
    assert {a.reason for a in locks if isinstance(a, EidError)} <= {
        "ONE_TIME_CODE_INVALID",
        "TOO_MANY_FAILED_ATTEMPTS",
        "CONCURRENT_REQUEST",
    }
