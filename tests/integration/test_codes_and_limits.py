"""Resend and account codes, and the limits on everything that sends an SMS,
through gRPC on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import grpc
import pytest
from google.protobuf.message import Message

from eid.v1 import identity_service_pb2 as pb
from eid_client.client import EidClient
from eid_service.demo import demo_citizens, portrait_capture
from eid_service.domain.citizen import Demographics
from eid_service.domain.notices import Language
from eid_service.domain.rate_limits import Limit, SendLimits
from tests.integration.account_life_kit import Refusal, Wire, activated, messages_to, wire
from tests.integration.flows import PASSWORD, phone_of, register
from tests.integration.harness import ServerHarness

WRONG_PHONE = "0987654321"
WRONG_EMAIL = "someone@example.vn"


def _resend(
    citizen: Demographics, phone: str = "", email: str = ""
) -> pb.ResendActivationCodeRequest:
    number = phone if phone or email else phone_of(citizen)[0]
    return pb.ResendActivationCodeRequest(
        personal_id=citizen.personal_id, phone_number=number, email=email
    )


def _activate(citizen: Demographics, code: str) -> pb.ActivateRequest:
    return pb.ActivateRequest(
        personal_id=citizen.personal_id,
        activation_code=code,
        new_password="correct horse battery staple",
    )


def test_a_stuck_account_gets_new_codes_and_the_fourth_newest_dies(
    harness: ServerHarness, citizen_app: EidClient, adult: Demographics
) -> None:
    """A stranger's wrong codes (anyone who knows the ID number can make
    them) slow the stranger; the citizen asks for new codes and activates
    with the newest. A code dies when three newer ones were sent (before
    b2971bd, each new code voided the one before it)."""
    register(citizen_app, adult)
    old = harness.wait_for_code(phone_of(adult)[1])
    with wire(harness, "203.0.113.66") as stranger:
        for _ in range(5):
            stranger.call("Activate", _activate(adult, "000000" if old != "000000" else "111111"))
    with wire(harness) as w:
        seen = len(harness.sender.messages)
        sent = w.call("ResendActivationCode", _resend(adult))
        assert not isinstance(sent, Refusal)
        assert sent.delivery.channel == pb.DELIVERY_CHANNEL_SMS
        assert sent.delivery.masked_destination.endswith(phone_of(adult)[1][-3:])
        newer = [harness.wait_for_code(phone_of(adult)[1], after=seen)]
        for _ in range(2):  # once a minute from one address
            harness.clock.advance(timedelta(minutes=1))
            seen = len(harness.sender.messages)
            assert not isinstance(w.call("ResendActivationCode", _resend(adult)), Refusal)
            newer.append(harness.wait_for_code(phone_of(adult)[1], after=seen))
        new = newer[-1]
        if old not in newer:  # the same six digits 3 times in a million
            with_old = w.call("Activate", _activate(adult, old))
            assert isinstance(with_old, Refusal)
            assert (with_old.code, with_old.reason) == (
                grpc.StatusCode.INVALID_ARGUMENT,
                "ACTIVATION_CODE_INVALID",
            )
        done = w.call("Activate", _activate(adult, new))
        assert not isinstance(done, Refusal)
        assert done.account.state == pb.ACCOUNT_STATE_ACTIVE


def test_resend_answers_alike_whether_the_details_match_or_not(
    harness: ServerHarness, citizen_app: EidClient, adults: list[Demographics]
) -> None:
    pending, active, unregistered = adults[0], adults[1], adults[2]
    register(citizen_app, pending)
    activated(harness, active)
    with wire(harness) as w:
        seen = len(harness.sender.messages)
        answers = [
            w.call("ResendActivationCode", _resend(pending, phone=WRONG_PHONE)),
            w.call("ResendActivationCode", _resend(unregistered, phone=WRONG_PHONE)),
            w.call("ResendActivationCode", _resend(active, phone=WRONG_PHONE)),
        ]
        assert all(not isinstance(a, Refusal) for a in answers)
        shown = {(a.delivery.channel, a.delivery.masked_destination) for a in answers}
        assert len(shown) == 1  # the masked form of what was typed, nothing else
        # Nothing was sent to anyone.
        assert harness.sender.messages[seen:] == []
        # The right phone for an ACTIVE account sends nothing either.
        w.call("ResendActivationCode", _resend(active))
        assert harness.sender.messages[seen:] == []


def _cost(
    harness: ServerHarness, decryptions: Callable[[], int], rpc: str, request: Message
) -> tuple[int, int]:
    """Statements run and values decrypted by a code request from a stranger
    that the server answers alike whoever the number names."""
    with wire(harness, "203.0.113.66") as stranger:
        statements, opens = harness.statements, decryptions()
        answer = stranger.call(rpc, request)
        assert not isinstance(answer, Refusal), answer
        return harness.statements - statements, decryptions() - opens


@pytest.mark.parametrize(
    ("purpose", "state"),
    [(pb.ACCOUNT_CODE_PURPOSE_LOCK, "active"), (pb.ACCOUNT_CODE_PURPOSE_UNLOCK, "locked")],
)
@pytest.mark.parametrize("contact", ["phone", "email"])
def test_account_code_requests_cost_the_same_whoever_the_number_names(
    harness: ServerHarness,
    adults: list[Demographics],
    decryptions: Callable[[], int],
    purpose: pb.AccountCodePurpose.ValueType,
    state: str,
    contact: str,
) -> None:
    """A stranger who knows ID numbers but not the phone or email (the
    account has none) asks for a code: an account, eligible or not, costs
    what no account costs, one decryption. Before, the server decrypted
    every sealed field of an account (5) and none without one, so the time
    taken told which numbers have an account (found by an attacker's pass)."""
    eligible, other, nobody = adults[0], adults[1], adults[2]
    activated(harness, eligible)
    activated(harness, other)
    if state == "locked":
        with wire(harness) as w:
            _lock_by_password(w, eligible)
        # Delivery decrypts the notice: done before anything is counted.
        messages_to(harness, phone_of(eligible)[1], at_least=2)

    def request(citizen: Demographics) -> pb.SendAccountCodeRequest:
        wrong = {"phone_number": WRONG_PHONE} if contact == "phone" else {"email": WRONG_EMAIL}
        return pb.SendAccountCodeRequest(purpose=purpose, personal_id=citizen.personal_id, **wrong)

    _cost(harness, decryptions, "SendAccountCode", request(other))  # warm
    costs = [_cost(harness, decryptions, "SendAccountCode", request(c)) for c in (eligible, nobody)]
    assert costs[0] == costs[1]
    assert costs[0][1] == 1


def test_a_code_sent_costs_the_statements_of_a_code_not_sent(
    harness: ServerHarness, adults: list[Demographics], decryptions: Callable[[], int]
) -> None:
    """Phone numbers are no secret: with the citizen's, a stranger's request
    sends a code to an account and none for a number without one. Before,
    the code and the message it queued were one or two statements (and two
    seals) the other did without (found in review)."""
    eligible, other, nobody = adults[0], adults[1], adults[2]
    activated(harness, eligible)
    activated(harness, other)
    phone = phone_of(eligible)[0]

    def request(citizen: Demographics, typed: str) -> pb.SendAccountCodeRequest:
        return pb.SendAccountCodeRequest(
            purpose=pb.ACCOUNT_CODE_PURPOSE_LOCK,
            personal_id=citizen.personal_id,
            phone_number=typed,
        )

    _cost(harness, decryptions, "SendAccountCode", request(other, phone_of(other)[0]))  # warm
    # Statements only: delivering the code sent decrypts it meanwhile.
    sent = _cost(harness, decryptions, "SendAccountCode", request(eligible, phone))[0]
    not_sent = _cost(harness, decryptions, "SendAccountCode", request(nobody, phone))[0]
    assert sent == not_sent
    messages_to(harness, phone_of(eligible)[1], at_least=1)  # it was sent


@pytest.mark.parametrize("contact", ["phone", "email"])
def test_activation_resends_cost_the_same_whoever_the_number_names(
    harness: ServerHarness,
    citizen_app: EidClient,
    adults: list[Demographics],
    decryptions: Callable[[], int],
    contact: str,
) -> None:
    """The same through ResendActivationCode: a PENDING account's number
    opened its sealed fields, a number without an account none."""
    pending, active, nobody, other = adults[0], adults[1], adults[2], adults[3]
    register(citizen_app, pending)
    messages_to(harness, phone_of(pending)[1], at_least=1)  # delivery decrypts it
    activated(harness, active)
    wrong = {"phone": WRONG_PHONE} if contact == "phone" else {"email": WRONG_EMAIL}
    _cost(harness, decryptions, "ResendActivationCode", _resend(other, **wrong))  # warm
    costs = [
        _cost(harness, decryptions, "ResendActivationCode", _resend(c, **wrong))
        for c in (pending, active, nobody)
    ]
    assert costs[0] == costs[1] == costs[2]
    assert costs[0][1] == 1


def _well_inside_a_day_window(harness: ServerHarness) -> None:
    """Limits count in fixed windows; a day's ends at the epoch's midnight.
    The test moves its clock a few minutes on: started just before that
    midnight, it would count in two windows (and see six resends allowed)."""
    window = SendLimits().code_per_day
    now = harness.clock()
    left = window.window_start(now) + window.window - now
    if left < timedelta(hours=1):
        harness.clock.advance(left + timedelta(minutes=1))


def test_resend_is_limited_per_minute_and_per_day_with_retry_info(
    harness: ServerHarness, citizen_app: EidClient, adult: Demographics
) -> None:
    _well_inside_a_day_window(harness)
    register(citizen_app, adult)
    with wire(harness) as w:
        assert not isinstance(w.call("ResendActivationCode", _resend(adult)), Refusal)
        again = w.call("ResendActivationCode", _resend(adult))
        assert isinstance(again, Refusal)
        assert (again.code, again.reason) == (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "TOO_MANY_REQUESTS",
        )
        assert again.retry_seconds is not None and 1 <= again.retry_seconds <= 61
        for _ in range(4):
            harness.clock.advance(timedelta(minutes=2))
            assert not isinstance(w.call("ResendActivationCode", _resend(adult)), Refusal)
        harness.clock.advance(timedelta(minutes=2))
        sixth = w.call("ResendActivationCode", _resend(adult))
        assert isinstance(sixth, Refusal) and sixth.reason == "TOO_MANY_REQUESTS"
        assert sixth.retry_seconds is not None and sixth.retry_seconds > 60
        # 1 registration SMS + 5 resends reached the phone.
        assert len(messages_to(harness, phone_of(adult)[1], at_least=6)) == 6


def test_a_stranger_with_a_wrong_phone_cannot_use_up_the_citizens_resends(
    harness: ServerHarness, citizen_app: EidClient, adult: Demographics
) -> None:
    register(citizen_app, adult)
    with wire(harness, forwarded_for="203.0.113.66") as stranger:
        for _ in range(6):
            stranger.call("ResendActivationCode", _resend(adult, phone=WRONG_PHONE))
            harness.clock.advance(timedelta(minutes=2))
    with wire(harness) as citizen:
        assert not isinstance(citizen.call("ResendActivationCode", _resend(adult)), Refusal)


def _lock_by_password(w: Wire, citizen: Demographics) -> None:
    request = pb.LockAccountRequest(
        password=pb.LockWithPassword(personal_id=citizen.personal_id, password=PASSWORD)
    )
    assert not isinstance(w.call("LockAccount", request), Refusal)


def _send_account_code(
    w: Wire, citizen: Demographics, purpose: pb.AccountCodePurpose.ValueType
) -> object:
    return w.call(
        "SendAccountCode",
        pb.SendAccountCodeRequest(
            purpose=purpose, personal_id=citizen.personal_id, phone_number=phone_of(citizen)[0]
        ),
    )


def test_a_stranger_who_knows_the_phone_cannot_use_up_the_citizens_unlock_codes(
    harness: ServerHarness, adult: Demographics
) -> None:
    """The account is locked. A stranger who knows the phone number (no
    secret) asks for an unlock code 5 times, 2 minutes apart, from an address
    of their own: that address's budget is spent, not the citizen's. Before,
    the limit was per (ID number, phone) alone and the citizen was refused
    for the rest of the day (found by an attacker's pass)."""
    _well_inside_a_day_window(harness)
    activated(harness, adult)
    with wire(harness) as citizen:
        _lock_by_password(citizen, adult)
        with wire(harness, "203.0.113.66") as stranger:
            for _ in range(5):
                sent = _send_account_code(stranger, adult, pb.ACCOUNT_CODE_PURPOSE_UNLOCK)
                assert not isinstance(sent, Refusal), sent
                harness.clock.advance(timedelta(minutes=2))
            spent = _send_account_code(stranger, adult, pb.ACCOUNT_CODE_PURPOSE_UNLOCK)
            assert isinstance(spent, Refusal) and spent.reason == "TOO_MANY_REQUESTS"
        mine = _send_account_code(citizen, adult, pb.ACCOUNT_CODE_PURPOSE_UNLOCK)
        assert not isinstance(mine, Refusal), mine


def _register_request(
    citizen: Demographics, phone: str, name: str | None = None
) -> pb.RegisterRequest:
    return pb.RegisterRequest(
        personal_id=citizen.personal_id,
        full_name=citizen.full_name if name is None else name,
        birth_date=citizen.birth_date.isoformat(),
        gender=pb.GENDER_MALE if citizen.gender.value == "male" else pb.GENDER_FEMALE,
        phone_number=phone,
        portrait=portrait_capture(citizen.personal_id),
    )


def test_register_is_limited_per_source_and_per_phone(database_url: str) -> None:
    limits = SendLimits(
        register_per_source=Limit("register-source", 3, timedelta(hours=1)),
        register_per_phone=Limit("register-phone", 2, timedelta(days=1)),
    )
    harness = ServerHarness(database_url, send_limits=limits).start()
    citizens = [c for c in demo_citizens() if c.birth_date.year < 2000][:4]
    harness.add_citizens(citizens)
    shared_phone = "0912000111"
    try:
        with wire(harness, forwarded_for="198.51.100.1") as one:
            outcomes = []
            for citizen in citizens[:3]:
                outcomes.append(one.call("Register", _register_request(citizen, shared_phone)))
            # Two SMS to one phone; the third registration naming it is refused.
            assert [isinstance(o, Refusal) for o in outcomes] == [False, False, True]
            third = outcomes[2]
            assert isinstance(third, Refusal) and third.reason == "TOO_MANY_REQUESTS"
            # The source's 4th attempt of the hour is refused whatever it says.
            # A well-formed probe of the registry (a made-up name).
            probe = one.call("Register", _register_request(citizens[3], "0912000999", "Anyone"))
            assert isinstance(probe, Refusal) and probe.code == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert probe.retry_seconds is not None and probe.retry_seconds > 0
        with wire(harness, forwarded_for="198.51.100.2") as other:
            request = _register_request(citizens[3], "0912000222")
            assert not isinstance(other.call("Register", request), Refusal)
        assert len(harness.rows("SELECT id FROM accounts")) == 3
    finally:
        harness.stop()


def test_code_requests_check_every_field(harness: ServerHarness) -> None:
    with wire(harness) as w:
        both = w.call(
            "ResendActivationCode",
            pb.ResendActivationCodeRequest(
                personal_id="12345", phone_number="0912345678", email="a@example.com"
            ),
        )
        assert isinstance(both, Refusal) and both.code == grpc.StatusCode.INVALID_ARGUMENT
        neither = w.call(
            "SendAccountCode",
            pb.SendAccountCodeRequest(
                purpose=pb.ACCOUNT_CODE_PURPOSE_LOCK, personal_id="001190000001"
            ),
        )
        assert isinstance(neither, Refusal) and neither.code == grpc.StatusCode.INVALID_ARGUMENT
        no_purpose = w.call(
            "SendAccountCode",
            pb.SendAccountCodeRequest(personal_id="001190000001", phone_number="0912345678"),
        )
        assert isinstance(no_purpose, Refusal) and no_purpose.reason == "PURPOSE_UNSPECIFIED"
        # A contact of blanks is no contact (this answered INTERNAL once).
        for blank in ("   ", " \t "):
            answer = w.call(
                "ResendActivationCode",
                pb.ResendActivationCodeRequest(personal_id="001190791514", email=blank),
            )
            assert isinstance(answer, Refusal)
            assert (answer.code, answer.reason) == (
                grpc.StatusCode.INVALID_ARGUMENT,
                "CONTACT_MISSING",
            )
    assert harness.rows("SELECT key FROM rate_counters") == []


def test_texts_are_vietnamese_by_default_and_english_by_setting(
    harness: ServerHarness, database_url: str, adults: list[Demographics]
) -> None:
    with EidClient(harness.target) as app:
        register(app, adults[0])
    (vietnamese,) = messages_to(harness, phone_of(adults[0])[1], at_least=1)
    assert "Mã kích hoạt" in vietnamese and "công an" in vietnamese
    # A second server on the same database, told to write English.
    english = ServerHarness(database_url, harness.key_ring, language=Language.ENGLISH).start()
    try:
        with EidClient(english.target) as app:
            register(app, adults[1])
        (text,) = messages_to(english, phone_of(adults[1])[1], at_least=1)
        assert "your activation code is" in text and "police" in text
    finally:
        english.stop()
