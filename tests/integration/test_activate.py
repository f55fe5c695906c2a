"""Activate: a one-time code that expires, works once and allows few guesses."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest

from eid.v1 import identity_service_pb2 as pb
from eid_client.client import EidClient
from eid_client.errors import EidError
from eid_service.domain.citizen import Demographics
from tests.integration.account_life_kit import Refusal, wire
from tests.integration.flows import PASSWORD, phone_of, register
from tests.integration.harness import ServerHarness


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


@pytest.fixture
def code(harness: ServerHarness, citizen_app: EidClient, adult: Demographics) -> str:
    register(citizen_app, adult)
    return harness.wait_for_code(phone_of(adult)[1])


def test_right_code_activates(citizen_app: EidClient, adult: Demographics, code: str) -> None:
    response = citizen_app.activate(
        personal_id=adult.personal_id, activation_code=code, new_password=PASSWORD
    )
    assert response.account.state == pb.ACCOUNT_STATE_ACTIVE
    assert response.account.HasField("activate_time")


def test_wrong_code_is_refused_and_counted(
    citizen_app: EidClient, adult: Demographics, code: str
) -> None:
    for _ in range(5):
        with pytest.raises(EidError) as caught:
            citizen_app.activate(
                personal_id=adult.personal_id, activation_code=wrong(code), new_password=PASSWORD
            )
        assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert caught.value.reason == "ACTIVATION_CODE_INVALID"
        assert [f for f, _ in caught.value.field_violations] == ["activation_code"]
    # Five wrong guesses slow their source: even the right code from it waits.
    with pytest.raises(EidError) as caught:
        citizen_app.activate(
            personal_id=adult.personal_id, activation_code=code, new_password=PASSWORD
        )
    assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert caught.value.reason == "TOO_MANY_FAILED_ATTEMPTS"


def test_strangers_guessing_from_several_addresses_leave_the_citizens_code(
    harness: ServerHarness, adult: Demographics, code: str
) -> None:
    """Before, 5 wrong guesses from anywhere spent the code, and every new
    one: anyone who knew the ID number kept the account pending (noticed by
    an attacker's pass)."""
    guess = pb.ActivateRequest(
        personal_id=adult.personal_id, activation_code=wrong(code), new_password=PASSWORD
    )
    for n in range(4):
        with wire(harness, f"203.0.113.{70 + n}") as stranger:
            answers = [stranger.call("Activate", guess) for _ in range(6)]
            assert [a.reason for a in answers] == ["ACTIVATION_CODE_INVALID"] * 5 + [
                "TOO_MANY_FAILED_ATTEMPTS"
            ]
    with wire(harness) as citizen:
        right = pb.ActivateRequest(
            personal_id=adult.personal_id, activation_code=code, new_password=PASSWORD
        )
        done = citizen.call("Activate", right)
        assert not isinstance(done, Refusal), done
        assert done.account.state == pb.ACCOUNT_STATE_ACTIVE


def test_expired_code_is_refused(
    harness: ServerHarness, citizen_app: EidClient, adult: Demographics, code: str
) -> None:
    harness.clock.advance(timedelta(minutes=10, seconds=1))
    with pytest.raises(EidError) as caught:
        citizen_app.activate(
            personal_id=adult.personal_id, activation_code=code, new_password=PASSWORD
        )
    assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert caught.value.reason == "ACTIVATION_CODE_EXPIRED"


def test_reused_code_is_refused(citizen_app: EidClient, adult: Demographics, code: str) -> None:
    citizen_app.activate(personal_id=adult.personal_id, activation_code=code, new_password=PASSWORD)
    with pytest.raises(EidError) as caught:
        citizen_app.activate(
            personal_id=adult.personal_id, activation_code=code, new_password=PASSWORD + "!"
        )
    assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert caught.value.reason == "ACTIVATION_CODE_ALREADY_USED"


def test_retried_activation_with_same_request_id_succeeds_again(
    citizen_app: EidClient, adult: Demographics, code: str
) -> None:
    first = citizen_app.activate(
        personal_id=adult.personal_id, activation_code=code, new_password=PASSWORD, request_id="a1"
    )
    again = citizen_app.activate(
        personal_id=adult.personal_id, activation_code=code, new_password=PASSWORD, request_id="a1"
    )
    assert again == first


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "PASSWORD_TOO_SHORT"),
        ("x" * 129, "PASSWORD_TOO_LONG"),
        ("aaaaaaaaaaaa", "PASSWORD_TOO_WEAK"),
    ],
)
def test_weak_password_is_refused_and_code_kept(
    citizen_app: EidClient, adult: Demographics, code: str, password: str, reason: str
) -> None:
    with pytest.raises(EidError) as caught:
        citizen_app.activate(
            personal_id=adult.personal_id, activation_code=code, new_password=password
        )
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.reason == reason
    assert [f for f, _ in caught.value.field_violations] == ["new_password"]
    response = citizen_app.activate(
        personal_id=adult.personal_id, activation_code=code, new_password=PASSWORD
    )
    assert response.account.state == pb.ACCOUNT_STATE_ACTIVE


def test_malformed_code_is_invalid_argument(citizen_app: EidClient, adult: Demographics) -> None:
    with pytest.raises(EidError) as caught:
        citizen_app.activate(
            personal_id=adult.personal_id, activation_code="12ab", new_password=PASSWORD
        )
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.reason == "ACTIVATION_CODE_MALFORMED"


def test_a_code_resent_by_a_stranger_leaves_the_citizens_code_working(
    harness: ServerHarness, citizen_app: EidClient, adult: Demographics, code: str
) -> None:
    """Anyone who knows the ID number and the phone can have the code resent;
    before, each resend voided the code the citizen was typing."""
    national, _ = phone_of(adult)
    resend = pb.ResendActivationCodeRequest(personal_id=adult.personal_id, phone_number=national)
    with wire(harness, "203.0.113.90") as stranger:
        for _ in range(2):
            sent = stranger.call("ResendActivationCode", resend)
            assert not isinstance(sent, Refusal), sent
            harness.clock.advance(timedelta(minutes=1))
    response = citizen_app.activate(
        personal_id=adult.personal_id, activation_code=code, new_password=PASSWORD
    )
    assert response.account.state == pb.ACCOUNT_STATE_ACTIVE


def test_a_wrong_code_costs_the_same_work_whoever_the_number_names(
    harness: ServerHarness, citizen_app: EidClient, adults: list[Demographics]
) -> None:
    """Timing cannot tell an unknown ID number, a pending account and an
    active one apart when each wrong code runs the same number of database
    statements (counted, not timed: these machines are noisy). Before, an
    unknown number ran 3 and an account, pending or active, 5."""
    unknown, pending, active = adults[1], adults[2], adults[3]
    register(citizen_app, pending)
    pending_code = harness.wait_for_code(phone_of(pending)[1])
    register(citizen_app, active)
    citizen_app.activate(
        personal_id=active.personal_id,
        activation_code=harness.wait_for_code(phone_of(active)[1]),
        new_password=PASSWORD,
    )

    def statements_of_a_wrong_code(who: Demographics, n: int) -> int:
        guess = pb.ActivateRequest(
            personal_id=who.personal_id,
            activation_code=wrong(pending_code) if who is pending else f"{n:06d}",
            new_password=PASSWORD,
        )
        with wire(harness, f"203.0.113.{100 + n}") as stranger:
            before = harness.statements
            answer = stranger.call("Activate", guess)
            assert isinstance(answer, Refusal) and answer.reason == "ACTIVATION_CODE_INVALID"
            return harness.statements - before

    work = {
        who.personal_id: [statements_of_a_wrong_code(who, i * 3 + n) for i in range(2)]
        for n, who in enumerate((unknown, pending, active))
    }
    assert len({cost for costs in work.values() for cost in costs}) == 1, work
