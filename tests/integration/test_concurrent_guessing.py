"""Bursts of concurrent calls: limits hold exactly, retries get their answer,
and nothing tells a stranger whether an ID number has an account."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from eid_client.client import EidClient
from eid_client.errors import EidError
from eid_service.domain.citizen import Demographics
from tests.integration.conftest import Party
from tests.integration.flows import PASSWORD, phone_of, register, register_and_activate
from tests.integration.harness import ServerHarness

BURST = 16


def _outcomes(calls: list[object], workers: int = BURST) -> Counter[str]:
    def run(call: object) -> str:
        try:
            call()  # type: ignore[operator]
        except EidError as e:
            return e.reason or e.code.name
        return "ok"

    with ThreadPoolExecutor(workers) as pool:
        return Counter(pool.map(run, calls))


def test_a_burst_of_wrong_passwords_is_checked_at_most_five_times(
    harness: ServerHarness, citizen_app: EidClient, adult: Demographics
) -> None:
    register_and_activate(harness, citizen_app, adult)
    outcomes = _outcomes(
        [
            lambda i=i: citizen_app.sign_in(personal_id=adult.personal_id, password=f"wrong-{i:04}")
            for i in range(BURST)
        ]
    )
    assert outcomes == {"INVALID_CREDENTIALS": 5, "TOO_MANY_FAILED_ATTEMPTS": BURST - 5}


def test_concurrent_right_passwords_all_verify(
    bank: Party, harness: ServerHarness, citizen_app: EidClient, adult: Demographics
) -> None:
    register_and_activate(harness, citizen_app, adult)
    # More callers than the server's database pool has connections: queued
    # checks must not sit on connections the running check needs.
    callers = 32
    outcomes = _outcomes(
        [
            lambda: bank.client.verify_password(personal_id=adult.personal_id, password=PASSWORD)
            for _ in range(callers)
        ],
        workers=callers,
    )
    assert outcomes == {"ok": callers}


def test_a_burst_of_wrong_codes_is_checked_at_most_five_times(
    harness: ServerHarness, citizen_app: EidClient, adult: Demographics
) -> None:
    register(citizen_app, adult)
    code = harness.wait_for_code(phone_of(adult)[1])
    wrong = [f"{(int(code) + i) % 1_000_000:06d}" for i in range(1, BURST)]
    outcomes = _outcomes(
        [
            lambda c=c: citizen_app.activate(
                personal_id=adult.personal_id, activation_code=c, new_password=PASSWORD
            )
            for c in [*wrong, code]
        ]
    )
    # One source gets 5 checks; the right code, if its turn came late, waits
    # like any other late guess from there.
    assert outcomes["ACTIVATION_CODE_INVALID"] + outcomes["ok"] == 5
    assert outcomes["TOO_MANY_FAILED_ATTEMPTS"] == BURST - 5


@pytest.mark.parametrize("state", ["active", "unknown"])
def test_activate_without_the_code_reveals_nothing_about_the_account(
    harness: ServerHarness,
    citizen_app: EidClient,
    adults: list[Demographics],
    state: str,
) -> None:
    citizen = adults[0]
    if state == "active":
        register_and_activate(harness, citizen_app, citizen)
    with pytest.raises(EidError) as caught:
        citizen_app.activate(
            personal_id=citizen.personal_id, activation_code="000000", new_password=PASSWORD
        )
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.reason == "ACTIVATION_CODE_INVALID"
