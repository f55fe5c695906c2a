"""LockAccount and UnlockAccount: a lost phone ends every session and share at
once; only an officer, or the citizen with the password and a code, unlocks."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from eid_service.domain.account import AccountState
from eid_service.domain.activation import (
    ACCOUNT_CODE_TTL,
    MAX_ACTIVATION_ATTEMPTS,
    MAX_LOCK_CODE_ATTEMPTS,
    CodePurpose,
)
from eid_service.domain.credential_policy import MAX_FAILURES_PER_SOURCE
from eid_service.domain.errors import (
    InvalidInput,
    NotFound,
    PreconditionFailed,
    TooManyAttempts,
    Unauthenticated,
)
from eid_service.domain.notices import NoticeKind
from eid_service.domain.share import Attribute
from eid_service.use_cases.lock import LockProof
from eid_service.use_cases.sign_in import SignedIn
from tests.unit.use_case_kit import (
    LAN,
    MINH,
    PASSWORD,
    STRANGER,
    STRANGER_IP,
    WRONG_PASSWORD,
    Citizen,
    Cost,
    World,
    as_seen,
    refused,
)

A = Attribute
LAN_EMAIL = replace(LAN, email="lan@example.vn")
SESSION, BY_PASSWORD, BY_CODE = LockProof.SESSION, LockProof.PASSWORD, LockProof.ONE_TIME_CODE
LOCK = CodePurpose.LOCK
LOCKED_NOTICE, UNLOCKED_NOTICE = NoticeKind.ACCOUNT_LOCKED, NoticeKind.ACCOUNT_UNLOCKED


async def _active_with_email(world: World) -> SignedIn:
    await world.active(LAN_EMAIL)
    return await world.sign_in(LAN)


async def _lock_code(world: World, citizen: Citizen = LAN) -> str:
    await world.request_code(CodePurpose.LOCK, citizen, phone=citizen.phone)
    return world.newest_code(citizen.phone, NoticeKind.LOCK_CODE)


async def _locked(world: World) -> None:
    await world.active(LAN_EMAIL)
    await world.lock(BY_PASSWORD, citizen=LAN, password=PASSWORD)


async def _unlock_code(world: World) -> str:
    world.clock.advance(timedelta(minutes=1))
    await world.request_code(CodePurpose.UNLOCK, LAN, phone=LAN.phone)
    return world.newest_code(LAN.phone, NoticeKind.UNLOCK_CODE)


def _other_than(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


# ---- locking ----------------------------------------------------------------


async def test_locking_from_a_session_ends_every_session_and_share_and_tells_the_citizen(
    world: World,
) -> None:
    phone = await _active_with_email(world)
    laptop = await world.sign_in(LAN)
    bank = world.party("Bank")
    pending_share = await world.share(phone.tokens.access_token, [A.FULL_NAME])
    used_share = await world.share(phone.tokens.access_token, [A.FULL_NAME])
    await world.redeem(bank, used_share.token)

    done = await world.lock(SESSION, access_token=laptop.tokens.access_token)

    assert done.changed and done.account.state is AccountState.LOCKED
    assert world.state_of(LAN) is AccountState.LOCKED
    for session in (phone, laptop):
        assert world.revoked_reason(session.tokens.session_id) == "account_locked"
        gone = await refused(world.sessions(session.tokens.access_token))
        assert gone.reason == "SESSION_INVALID"
        dead = await refused(world.refresh(session.tokens.refresh_token))
        assert dead.reason == "REFRESH_TOKEN_INVALID"
    revoked = await refused(world.redeem(bank, pending_share.token))
    assert revoked.reason == "ACCOUNT_LOCKED"
    assert world.uow.state.shares[pending_share.grant.id].revoked_at == world.clock()
    assert world.uow.state.shares[used_share.grant.id].revoked_at is None
    assert world.sent_to(LAN.phone)[-1] is LOCKED_NOTICE
    assert world.sent_to(LAN_EMAIL.email) == [LOCKED_NOTICE]
    assert ("lock", "ok_session", None) in world.history(LAN)


async def test_a_locked_account_cannot_sign_in_verify_or_share(world: World) -> None:
    await _locked(world)
    bank = world.party("Bank")

    sign_in = await refused(world.sign_in(LAN))
    verify = await refused(world.verify(bank, LAN.personal_id, PASSWORD))

    assert sign_in.reason == "ACCOUNT_LOCKED"
    assert verify.reason == "ACCOUNT_LOCKED"
    assert world.uow.state.sessions == {}


async def test_locking_with_the_password_needs_no_device(world: World) -> None:
    await world.active(LAN_EMAIL)
    session = await world.sign_in(LAN)

    done = await world.lock(BY_PASSWORD, citizen=LAN, password=PASSWORD, source=STRANGER_IP)

    assert done.changed and world.state_of(LAN) is AccountState.LOCKED
    assert world.revoked_reason(session.tokens.session_id) == "account_locked"
    assert world.history(LAN)[-1] == ("lock", "ok_password", None)
    assert world.sent_to(LAN.phone)[-1] is LOCKED_NOTICE


async def test_a_wrong_password_locks_nothing_and_tells_nothing(world: World) -> None:
    await world.active(LAN)
    await world.register(MINH)  # PENDING

    answers = []
    for pid in (LAN.personal_id, MINH.personal_id, STRANGER.personal_id):
        before = world.cost()
        error = await refused(world.lock(BY_PASSWORD, citizen=pid, password=WRONG_PASSWORD))
        answers.append((as_seen(error), world.cost() - before))

    assert answers[0] == answers[1] == answers[2]
    assert answers[0][0][:2] == ("Unauthenticated", "INVALID_CREDENTIALS")
    assert answers[0][1] == Cost(hashes=0, verifications=1, writes=2, reads=0)
    assert world.state_of(LAN) is AccountState.ACTIVE
    assert world.history(LAN)[-1] == ("lock", "rejected", None)
    assert LOCKED_NOTICE not in world.sent_to(LAN.phone)


async def test_wrong_passwords_to_lock_are_throttled_like_sign_in(world: World) -> None:
    await world.active(LAN)
    for _ in range(MAX_FAILURES_PER_SOURCE):
        await refused(world.lock(BY_PASSWORD, citizen=LAN, password=WRONG_PASSWORD))

    error = await refused(world.lock(BY_PASSWORD, citizen=LAN, password=PASSWORD))

    assert isinstance(error, TooManyAttempts) and error.reason == "TOO_MANY_FAILED_ATTEMPTS"
    assert world.state_of(LAN) is AccountState.ACTIVE
    done = await world.lock(BY_PASSWORD, citizen=LAN, password=PASSWORD, source=STRANGER_IP)
    assert done.changed


async def test_locking_with_a_code_sent_to_the_phone(world: World) -> None:
    await world.active(LAN_EMAIL)
    code = await _lock_code(world)

    done = await world.lock(BY_CODE, citizen=LAN, code=code)

    assert done.changed and world.state_of(LAN) is AccountState.LOCKED
    assert world.history(LAN)[-1] == ("lock", "ok_one_time_code", None)
    assert world.sent_to(LAN.phone)[-1] is LOCKED_NOTICE
    assert world.sent_to(LAN_EMAIL.email) == [LOCKED_NOTICE]


async def test_a_lock_code_works_once_and_only_for_locking(world: World) -> None:
    await world.active(LAN)
    code = await _lock_code(world)

    wrong_purpose = await refused(world.unlock_by_citizen(LAN, code))
    assert wrong_purpose.reason == "ONE_TIME_CODE_INVALID"
    await world.lock(BY_CODE, citizen=LAN, code=code)
    await world.unlock_by_officer(world.officer()[1], LAN)

    error = await refused(world.lock(BY_CODE, citizen=LAN, code=code))
    assert isinstance(error, InvalidInput) and error.reason == "ONE_TIME_CODE_INVALID"
    assert world.state_of(LAN) is AccountState.ACTIVE
    # No email registered: the lock and unlock notices went by SMS only.
    assert {m.channel for m in world.uow.state.outbox.values()} == {"sms"}
    assert world.sent_to(LAN.phone)[-2:] == [LOCKED_NOTICE, UNLOCKED_NOTICE]


async def test_one_stranger_cannot_burn_the_citizens_lock_code(world: World) -> None:
    """Wrong guesses from one source stop at that source's budget; the code
    lives on for the citizen's own device."""
    await world.active(LAN)
    code = await _lock_code(world)
    wrong = _other_than(code)

    for _ in range(MAX_FAILURES_PER_SOURCE):
        error = await refused(world.lock(BY_CODE, citizen=LAN, code=wrong, source="ip:stranger"))
        assert error.reason == "ONE_TIME_CODE_INVALID"
    throttled = await refused(world.lock(BY_CODE, citizen=LAN, code=code, source="ip:stranger"))
    assert isinstance(throttled, TooManyAttempts)
    assert throttled.reason == "TOO_MANY_FAILED_ATTEMPTS"
    assert world.state_of(LAN) is AccountState.ACTIVE

    assert (await world.lock(BY_CODE, citizen=LAN, code=code)).changed
    assert world.state_of(LAN) is AccountState.LOCKED
    assert ("lock", "rejected_code", None) in world.history(LAN)


async def test_strangers_from_many_sources_cannot_burn_the_citizens_lock_code(
    world: World,
) -> None:
    """19 sources spend their own budgets inside the code's 10 minutes (it
    takes 20 to reach the code's ceiling); the citizen's code still locks.
    Before, 4 sources spent it (found by an attacker's pass)."""
    await world.active(LAN)
    code = await _lock_code(world)
    wrong = _other_than(code)
    for n in range(19 * MAX_FAILURES_PER_SOURCE):
        source = f"ip:guesser-{n // MAX_FAILURES_PER_SOURCE}"
        error = await refused(world.lock(BY_CODE, citizen=LAN, code=wrong, source=source))
        assert error.reason == "ONE_TIME_CODE_INVALID"

    assert (await world.lock(BY_CODE, citizen=LAN, code=code)).changed


async def test_wrong_lock_codes_from_many_sources_are_counted_until_the_code_dies(
    world: World,
) -> None:
    await world.active(LAN)
    code = await _lock_code(world)
    wrong = _other_than(code)
    per_source = MAX_FAILURES_PER_SOURCE
    for guess in range(MAX_LOCK_CODE_ATTEMPTS):
        source = f"ip:guesser-{guess // per_source}"
        error = await refused(world.lock(BY_CODE, citizen=LAN, code=wrong, source=source))
        assert error.reason == "ONE_TIME_CODE_INVALID"

    error = await refused(world.lock(BY_CODE, citizen=LAN, code=code))

    assert error.reason == "ONE_TIME_CODE_INVALID"
    assert world.state_of(LAN) is AccountState.ACTIVE


async def test_a_retried_wrong_code_is_counted_once(world: World) -> None:
    await world.active(LAN)
    code = await _lock_code(world)
    wrong = _other_than(code)

    for _ in range(MAX_ACTIVATION_ATTEMPTS + 3):
        error = await refused(world.lock(BY_CODE, citizen=LAN, code=wrong, request_id="lock-1"))
        assert error.reason == "ONE_TIME_CODE_INVALID"

    assert (await world.lock(BY_CODE, citizen=LAN, code=code)).changed


async def test_a_code_lock_for_anyone_looks_the_same_without_the_code(world: World) -> None:
    await world.active(LAN)
    wrong = _other_than(await _lock_code(world))

    answers = []
    for pid in (LAN.personal_id, STRANGER.personal_id):
        before = world.cost()
        error = await refused(world.lock(BY_CODE, citizen=pid, code=wrong))
        answers.append((as_seen(error), world.cost() - before))

    assert answers[0] == answers[1]
    assert answers[0][1] == Cost(hashes=0, verifications=0, writes=1, reads=0)


async def test_lock_codes_sent_after_one_leave_it_usable(world: World) -> None:
    """Anyone who knows the phone can have a code sent: the citizen's code
    keeps working through the next two, whoever asked (before, each new
    code voided the one before; found by an attacker's pass)."""
    await world.active(LAN)
    mine = await _lock_code(world)
    for n in range(2):
        world.clock.advance(timedelta(minutes=1))
        await world.request_code(LOCK, LAN, phone=LAN.phone, source=f"ip:198.51.100.{n}")

    assert (await world.lock(BY_CODE, citizen=LAN, code=mine)).changed


async def test_only_the_three_newest_lock_codes_work(world: World) -> None:
    await world.active(LAN)
    codes = []
    for _ in range(4):
        codes.append(await _lock_code(world))
        world.clock.advance(timedelta(minutes=1))

    if codes[0] not in codes[1:]:  # the same six digits one time in a million
        error = await refused(world.lock(BY_CODE, citizen=LAN, code=codes[0]))
        assert error.reason == "ONE_TIME_CODE_INVALID"
    assert (await world.lock(BY_CODE, citizen=LAN, code=codes[1])).changed


async def test_a_lock_code_works_only_until_its_own_expiry(world: World) -> None:
    await world.active(LAN)
    old = await _lock_code(world)
    world.clock.advance(ACCOUNT_CODE_TTL - timedelta(minutes=1))
    new = await _lock_code(world)
    world.clock.advance(timedelta(minutes=1))

    if old != new:
        error = await refused(world.lock(BY_CODE, citizen=LAN, code=old))
        assert error.reason == "ONE_TIME_CODE_INVALID"
    assert (await world.lock(BY_CODE, citizen=LAN, code=new)).changed


async def test_a_used_lock_code_ends_the_ones_sent_before_it(world: World) -> None:
    await world.active(LAN)
    old = await _lock_code(world)
    world.clock.advance(timedelta(minutes=1))
    new = await _lock_code(world)
    assert (await world.lock(BY_CODE, citizen=LAN, code=new)).changed
    await world.unlock_by_officer(world.officer()[1], LAN)

    if old != new:
        error = await refused(world.lock(BY_CODE, citizen=LAN, code=old))
        assert error.reason == "ONE_TIME_CODE_INVALID"
    assert world.state_of(LAN) is AccountState.ACTIVE


async def test_a_wrong_lock_code_counts_against_each_code_that_works(world: World) -> None:
    """So a guess at three codes at once spends them together: none
    outlives MAX_LOCK_CODE_ATTEMPTS wrong guesses."""
    await world.active(LAN)
    old = await _lock_code(world)
    world.clock.advance(timedelta(minutes=1))
    new = await _lock_code(world)
    wrong = next(c for c in (_other_than(old), _other_than(new), "000000") if c not in (old, new))
    for guess in range(MAX_LOCK_CODE_ATTEMPTS):
        source = f"ip:guesser-{guess // MAX_FAILURES_PER_SOURCE}"
        await refused(world.lock(BY_CODE, citizen=LAN, code=wrong, source=source))

    for code in (old, new):
        error = await refused(world.lock(BY_CODE, citizen=LAN, code=code))
        assert error.reason == "ONE_TIME_CODE_INVALID"


async def test_locking_a_locked_account_again_changes_and_sends_nothing(world: World) -> None:
    await _locked(world)
    sent, history = world.sent_to(LAN.phone), world.history(LAN)

    again = await world.lock(BY_PASSWORD, citizen=LAN, password=PASSWORD)

    assert not again.changed and again.account.state is AccountState.LOCKED
    assert world.sent_to(LAN.phone) == sent
    assert world.history(LAN)[len(history) :] == []


async def test_a_pending_account_cannot_be_locked_and_its_state_is_not_told(
    world: World,
) -> None:
    await world.register(LAN)
    by_password = await refused(world.lock(BY_PASSWORD, citizen=LAN, password=PASSWORD))
    await world.request_code(CodePurpose.LOCK, LAN, phone=LAN.phone)  # nothing is sent
    by_code = await refused(world.lock(BY_CODE, citizen=LAN, code=world.activation_code(LAN)))

    assert by_password.reason == "INVALID_CREDENTIALS"
    assert by_code.reason == "ONE_TIME_CODE_INVALID"
    assert world.state_of(LAN) is AccountState.PENDING


async def test_a_session_of_an_account_set_back_to_pending_is_told_not_active(
    world: World,
) -> None:
    session = await _active_with_email(world)
    world.set_state(LAN, AccountState.PENDING)

    error = await refused(world.lock(SESSION, access_token=session.tokens.access_token))

    assert isinstance(error, PreconditionFailed) and error.reason == "ACCOUNT_NOT_ACTIVE"
    assert world.state_of(LAN) is AccountState.PENDING
    assert world.revoked_reason(session.tokens.session_id) is None


async def test_a_retried_lock_sends_one_notice(world: World) -> None:
    session = await _active_with_email(world)
    token = session.tokens.access_token

    first = await world.lock(SESSION, access_token=token, request_id="lock-1")
    again = await world.lock(SESSION, access_token=token, request_id="lock-1")

    assert again == first and first.changed
    assert world.sent_to(LAN.phone).count(LOCKED_NOTICE) == 1
    assert world.sent_to(LAN_EMAIL.email) == [LOCKED_NOTICE]


async def test_a_retried_password_lock_sends_one_notice(world: World) -> None:
    await world.active(LAN)
    first = await world.lock(BY_PASSWORD, citizen=LAN, password=PASSWORD, request_id="lock-1")
    again = await world.lock(BY_PASSWORD, citizen=LAN, password=PASSWORD, request_id="lock-1")

    assert again == first and first.changed
    assert world.sent_to(LAN.phone).count(LOCKED_NOTICE) == 1


async def test_locking_needs_a_session_when_the_session_is_the_proof(world: World) -> None:
    error = await refused(world.lock(SESSION))
    assert isinstance(error, Unauthenticated) and error.reason == "SESSION_MISSING"
    assert world.uow.transactions == 0


# ---- unlocking by an officer ------------------------------------------------


async def test_an_officer_unlocks_and_is_named_in_the_audit(world: World) -> None:
    await _locked(world)
    officer, key = world.officer()

    done = await world.unlock_by_officer(key, LAN)

    assert done.changed and done.account.state is AccountState.ACTIVE
    assert world.state_of(LAN) is AccountState.ACTIVE
    last = world.audit_events(LAN)[-1]
    assert (last.action, last.outcome, last.actor) == ("unlock", "ok_officer", officer.id)
    assert world.chain_intact(LAN)
    assert world.sent_to(LAN.phone)[-1] is UNLOCKED_NOTICE
    assert world.sent_to(LAN_EMAIL.email) == [LOCKED_NOTICE, UNLOCKED_NOTICE]
    assert (await world.sign_in(LAN)).account.state is AccountState.ACTIVE


async def test_unlocking_does_not_bring_back_sessions_or_shares(world: World) -> None:
    session = await _active_with_email(world)
    bank = world.party("Bank")
    share = await world.share(session.tokens.access_token, [A.FULL_NAME])
    await world.lock(SESSION, access_token=session.tokens.access_token)

    await world.unlock_by_officer(world.officer()[1], LAN)

    assert (await refused(world.sessions(session.tokens.access_token))).reason == (
        "SESSION_INVALID"
    )
    # The account is active again, but the share stays withdrawn.
    assert (await refused(world.redeem(bank, share.token))).reason == "SHARE_REVOKED"
    assert world.uow.state.shares[share.grant.id].redeemed_at is None


async def test_an_officer_is_told_precisely_what_is_wrong(world: World) -> None:
    await world.active(LAN)
    _, key = world.officer()

    not_locked = await refused(world.unlock_by_officer(key, LAN))
    not_found = await refused(world.unlock_by_officer(key, STRANGER))

    assert isinstance(not_locked, PreconditionFailed) and not_locked.reason == "ACCOUNT_NOT_LOCKED"
    assert isinstance(not_found, NotFound) and not_found.reason == "ACCOUNT_NOT_FOUND"
    assert UNLOCKED_NOTICE not in world.sent_to(LAN.phone)


async def test_an_officers_refused_unlocks_are_audited_under_the_officer(world: World) -> None:
    """Else an officer could look up, unseen, who has an account and
    whether it is locked (found by an attacker's pass)."""
    await world.active(LAN)
    officer, key = world.officer()

    await refused(world.unlock_by_officer(key, LAN))
    await refused(world.unlock_by_officer(key, STRANGER))

    for citizen, outcome in (
        (LAN, "refused_account_not_locked"),
        (STRANGER, "refused_account_not_found"),
    ):
        last = world.audit_events(citizen)[-1]
        assert (last.action, last.outcome, last.actor) == ("unlock", outcome, officer.id)
    assert world.chain_intact(LAN)


async def test_without_an_officers_key_nothing_is_unlocked_or_told(world: World) -> None:
    await _locked(world)
    world.officer()

    missing = await refused(world.unlock_by_officer(None, LAN))
    wrong = await refused(world.unlock_by_officer("eido_not-a-key", LAN))
    unknown = await refused(world.unlock_by_officer("eido_not-a-key", STRANGER))

    assert isinstance(missing, Unauthenticated) and missing.reason == "OFFICER_KEY_INVALID"
    assert as_seen(wrong) == as_seen(unknown) == as_seen(missing)
    assert world.state_of(LAN) is AccountState.LOCKED


async def test_an_officers_retry_sends_one_notice(world: World) -> None:
    await _locked(world)
    _, key = world.officer()

    first = await world.unlock_by_officer(key, LAN, request_id="unlock-1")
    again = await world.unlock_by_officer(key, LAN, request_id="unlock-1")

    assert again == first
    assert world.sent_to(LAN.phone).count(UNLOCKED_NOTICE) == 1
    assert [e.action for e in world.audit_events(LAN)].count("unlock") == 1


# ---- unlocking by the citizen -----------------------------------------------


async def test_the_citizen_unlocks_with_the_password_and_an_unlock_code(world: World) -> None:
    await _locked(world)
    code = await _unlock_code(world)

    done = await world.unlock_by_citizen(LAN, code)

    assert done.changed and world.state_of(LAN) is AccountState.ACTIVE
    last = world.audit_events(LAN)[-1]
    assert (last.action, last.outcome, last.actor) == ("unlock", "ok_citizen", None)
    assert world.sent_to(LAN.phone)[-1] is UNLOCKED_NOTICE
    await world.sign_in(LAN)


async def test_the_right_code_with_a_wrong_password_unlocks_nothing_and_keeps_the_code(
    world: World,
) -> None:
    await _locked(world)
    code = await _unlock_code(world)

    error = await refused(world.unlock_by_citizen(LAN, code, WRONG_PASSWORD, source=STRANGER_IP))

    assert isinstance(error, Unauthenticated) and error.reason == "INVALID_CREDENTIALS"
    assert world.state_of(LAN) is AccountState.LOCKED
    assert world.history(LAN)[-1] == ("unlock", "rejected", None)
    assert (await world.unlock_by_citizen(LAN, code)).changed


async def test_an_unlock_code_someone_else_asks_for_leaves_the_citizens_usable(
    world: World,
) -> None:
    await _locked(world)
    code = await _unlock_code(world)
    world.clock.advance(timedelta(minutes=1))
    await world.request_code(CodePurpose.UNLOCK, LAN, phone=LAN.phone, source=STRANGER_IP)

    assert (await world.unlock_by_citizen(LAN, code)).changed


async def test_a_stranger_guessing_codes_without_the_password_cannot_burn_the_code(
    world: World,
) -> None:
    await _locked(world)
    code = await _unlock_code(world)

    for guess in range(MAX_ACTIVATION_ATTEMPTS + 1):
        await refused(
            world.unlock_by_citizen(
                LAN, f"{guess:06d}", WRONG_PASSWORD, source=f"ip:10.0.0.{guess}"
            )
        )

    assert (await world.unlock_by_citizen(LAN, code)).changed


async def test_the_password_is_throttled_before_any_code_is_looked_at(world: World) -> None:
    await _locked(world)
    code = await _unlock_code(world)
    for _ in range(MAX_FAILURES_PER_SOURCE):
        await refused(world.unlock_by_citizen(LAN, code, WRONG_PASSWORD, source=STRANGER_IP))

    before = world.cost()
    error = await refused(world.unlock_by_citizen(LAN, code, PASSWORD, source=STRANGER_IP))

    assert isinstance(error, TooManyAttempts) and error.reason == "TOO_MANY_FAILED_ATTEMPTS"
    assert world.cost() - before == Cost(hashes=0, verifications=0, writes=1, reads=0)
    assert world.state_of(LAN) is AccountState.LOCKED
    assert (await world.unlock_by_citizen(LAN, code)).changed


async def test_the_right_password_with_a_wrong_code_counts_against_the_code(
    world: World,
) -> None:
    await _locked(world)
    code = await _unlock_code(world)
    wrong = _other_than(code)

    for _ in range(MAX_ACTIVATION_ATTEMPTS):
        error = await refused(world.unlock_by_citizen(LAN, wrong))
        assert isinstance(error, InvalidInput) and error.reason == "ONE_TIME_CODE_INVALID"
    dead = await refused(world.unlock_by_citizen(LAN, code))

    assert dead.reason == "ONE_TIME_CODE_INVALID"
    assert world.state_of(LAN) is AccountState.LOCKED
    fresh = await _unlock_code(world)
    assert (await world.unlock_by_citizen(LAN, fresh)).changed


async def test_an_unknown_id_number_costs_and_answers_like_a_wrong_password(
    world: World,
) -> None:
    await _locked(world)
    code = await _unlock_code(world)

    answers = []
    for pid in (LAN.personal_id, STRANGER.personal_id):
        before = world.cost()
        error = await refused(world.unlock_by_citizen(pid, code, WRONG_PASSWORD))
        answers.append((as_seen(error), world.cost() - before))

    assert answers[0] == answers[1]
    assert answers[0][1] == Cost(hashes=0, verifications=1, writes=2, reads=0)


async def test_a_citizens_retried_unlock_sends_one_notice(world: World) -> None:
    await _locked(world)
    code = await _unlock_code(world)

    first = await world.unlock_by_citizen(LAN, code, request_id="unlock-1")
    again = await world.unlock_by_citizen(LAN, code, request_id="unlock-1")

    assert again == first
    assert world.sent_to(LAN.phone).count(UNLOCKED_NOTICE) == 1


async def test_a_malformed_code_is_refused_before_the_password_is_tried(world: World) -> None:
    await _locked(world)
    before = world.cost()
    error = await refused(world.unlock_by_citizen(LAN, "12ab56"))
    assert isinstance(error, InvalidInput) and error.reason == "ACTIVATION_CODE_MALFORMED"
    assert world.cost() == before
