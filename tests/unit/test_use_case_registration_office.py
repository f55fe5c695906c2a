"""RegisterLevel2 and UpgradeToLevel2 against the fake store: only an officer
with the registration role acts; the capture must match the registry's
enrolment; a new account is PENDING until the citizen activates it; every
outcome is audited under the officer's id, once per request id."""

from __future__ import annotations

from dataclasses import astuple, replace
from datetime import date, datetime, timedelta

import pytest

from eid_service.domain.account import Account, AccountLevel, AccountState
from eid_service.domain.biometric_match import BiometricCapture
from eid_service.domain.biometrics import Finger, Template
from eid_service.domain.citizen import Demographics, Gender
from eid_service.domain.errors import (
    Aborted,
    AlreadyExists,
    InvalidInput,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    Unauthenticated,
)
from eid_service.domain.notices import NoticeKind
from eid_service.domain.officer import Officer, OfficerRole
from eid_service.domain.personal_id import make_personal_id
from eid_service.domain.rate_limits import Limit, OfficerLimits
from eid_service.domain.registry_person import RegistryPerson
from eid_service.use_cases.lock import LockProof
from eid_service.use_cases.officer_auth import OfficerCall
from eid_service.use_cases.registration_office import (
    CaptureInput,
    Level2Registered,
    RegisterLevel2Command,
    UpgradeCommand,
    register_level2,
    upgrade_to_level2,
)
from tests.biometric_kit import adult, at_similarity, capture_of, enrolled_person
from tests.unit.fake_store import FakeAccounts
from tests.unit.use_case_kit import Citizen, World, refused

NGOC = Citizen(adult(201), "0901234567", "ngoc@example.vn")
PERSON = enrolled_person(NGOC.demographics, seed=21)
RIGHT, LEFT = Finger.RIGHT_INDEX, Finger.LEFT_INDEX


@pytest.fixture
def office(world: World) -> World:
    world.uow.run_now(lambda r: r.registry.put_person(PERSON))
    return world


def _input(capture: BiometricCapture) -> CaptureInput:
    return CaptureInput(
        capture.portrait.packed,
        tuple((f.value, t.packed) for f, t in capture.fingerprints.items()),
    )


def _officer(world: World, *roles: OfficerRole) -> tuple[Officer, str]:
    chosen = frozenset(roles) or frozenset(OfficerRole)
    return world.uow.run_now(lambda r: r.officers.create("Officer Hà", world.clock(), chosen))


def _command(capture: CaptureInput | None = None, **changes: object) -> RegisterLevel2Command:
    d = NGOC.demographics
    cmd = RegisterLevel2Command(
        personal_id=d.personal_id,
        full_name=d.full_name,
        birth_date=d.birth_date.isoformat(),
        gender=d.gender,
        phone_number=NGOC.phone,
        email=NGOC.email,
        capture=capture or _input(capture_of(PERSON, seed=1)),
    )
    return replace(cmd, **changes)  # type: ignore[arg-type]


async def _register(
    world: World, call: OfficerCall | str, cmd: RegisterLevel2Command, request_id: str = ""
) -> Level2Registered:
    officer = OfficerCall(call) if isinstance(call, str) else call
    reply = world.reply(Level2Registered, "register_level2", astuple(cmd), request_id)
    return await register_level2(world.uow, world.ctx, officer, cmd, reply)


async def _upgrade(
    world: World, key: str, capture: CaptureInput, request_id: str = "", pid: str = ""
) -> Account:
    cmd = UpgradeCommand(pid or NGOC.personal_id, capture)
    reply = world.reply(Account, "upgrade_to_level2", astuple(cmd), request_id)
    return await upgrade_to_level2(world.uow, world.ctx, OfficerCall(key), cmd, reply)


def _accounts(world: World) -> list[Account]:
    return list(world.uow.state.accounts.values())


def _audit(world: World, action: str) -> list[tuple[str, str | None, str | None]]:
    return [(e.outcome, e.reason, e.actor) for e in world.audit_events(NGOC) if e.action == action]


# ---- registering at the counter ---------------------------------------------


async def test_a_matching_capture_makes_a_pending_level_2_account_the_citizen_activates(
    office: World,
) -> None:
    officer, key = _officer(office)
    done = await _register(office, key, _command())

    account = done.account
    assert (account.level, account.state) == (AccountLevel.LEVEL_2, AccountState.PENDING)
    assert office.sent_to(NGOC.phone) == [NoticeKind.ACTIVATION_CODE]
    enrolled, at = office.uow.state.biometrics[account.id]
    assert set(enrolled.fingerprints) == {RIGHT, LEFT} and isinstance(at, datetime)
    assert _audit(office, "register_level2") == [("ok", None, officer.id)]

    active = await office.activate(NGOC)
    assert (active.level, active.state) == (AccountLevel.LEVEL_2, AccountState.ACTIVE)


async def test_the_registry_spelling_is_kept(office: World) -> None:
    _, key = _officer(office)
    shouted = NGOC.demographics.full_name.upper()
    done = await _register(office, key, _command(full_name=f"  {shouted} "))
    assert done.account.demographics.full_name == NGOC.demographics.full_name


@pytest.mark.parametrize(
    ("face", "finger", "created"),
    [(0.805, 0.995, True), (0.795, 0.995, False), (0.995, 0.805, True), (0.995, 0.795, False)],
)
async def test_the_thresholds_decide_from_either_side(
    office: World, face: float, finger: float, created: bool
) -> None:
    """Default thresholds: 0.80 for the face and for each finger."""
    officer, key = _officer(office)
    assert PERSON.portrait is not None
    capture = BiometricCapture(
        at_similarity(PERSON.portrait, face, seed=2),
        {
            RIGHT: at_similarity(PERSON.fingerprints[RIGHT], 0.99, seed=3),
            LEFT: at_similarity(PERSON.fingerprints[LEFT], finger, seed=4),
        },
    )
    cmd = _command(_input(capture))
    if created:
        await _register(office, key, cmd)
        assert len(_accounts(office)) == 1
        return
    mismatch = await refused(_register(office, key, cmd))
    assert isinstance(mismatch, PreconditionFailed) and mismatch.reason == "REGISTRY_MISMATCH"
    assert _accounts(office) == [] and office.uow.state.biometrics == {}
    assert office.sent_to(NGOC.phone) == []
    assert _audit(office, "register_level2") == [("rejected", "REGISTRY_MISMATCH", officer.id)]


async def test_one_answer_whatever_does_not_match(office: World) -> None:
    _, key = _officer(office)
    stranger = enrolled_person(adult(202), seed=22)
    no_right_thumb: dict[Finger, Template] = {
        f: t for f, t in PERSON.fingerprints.items() if f is not Finger.RIGHT_THUMB
    }
    office.uow.run_now(
        lambda r: r.registry.put_person(
            RegistryPerson(adult(203), portrait=PERSON.portrait, fingerprints=no_right_thumb)
        )
    )
    unenrolled = _input(capture_of(PERSON, seed=5, fingers=[RIGHT, Finger.RIGHT_THUMB]))
    answers = [
        await refused(_register(office, key, _command(birth_date="1988-03-15"))),
        await refused(_register(office, key, _command(_input(capture_of(stranger, seed=6))))),
        await refused(
            _register(office, key, _command(unenrolled, personal_id=adult(203).personal_id))
        ),
        await refused(_register(office, key, _command(personal_id=adult(204).personal_id))),
    ]
    assert {(a.reason, a.message) for a in answers} == {
        (
            "REGISTRY_MISMATCH",
            "the declared data, portrait or fingerprints do not match the population registry",
        )
    }
    assert _accounts(office) == []


async def test_a_citizen_with_an_account_is_sent_to_upgrade(office: World) -> None:
    _, key = _officer(office)
    await office.register(NGOC)
    pending = await refused(_register(office, key, _command()))
    assert isinstance(pending, AlreadyExists) and pending.reason == "ACCOUNT_PENDING"
    await office.activate(NGOC)
    exists = await refused(_register(office, key, _command()))
    assert isinstance(exists, AlreadyExists) and exists.reason == "ACCOUNT_ALREADY_EXISTS"
    assert "UpgradeToLevel2" in exists.message
    assert [a.level for a in _accounts(office)] == [AccountLevel.LEVEL_1]
    # A guardian's dependant (14 now): UpgradeToLevel2 would refuse it, so the
    # officer is told the way that works.
    office.set_state(NGOC, AccountState.DEPENDANT)
    dependant = await refused(_register(office, key, _command()))
    assert isinstance(dependant, AlreadyExists) and dependant.reason == "ACCOUNT_ALREADY_EXISTS"
    assert "takes it over" in dependant.message


async def test_a_retry_registers_sends_and_audits_once(office: World) -> None:
    _, key = _officer(office)
    first = await _register(office, key, _command(), request_id="counter-7")
    again = await _register(office, key, _command(), request_id="counter-7")
    assert again == first
    assert office.sent_to(NGOC.phone) == [NoticeKind.ACTIVATION_CODE]
    assert len(_audit(office, "register_level2")) == 1

    stranger = _command(_input(capture_of(enrolled_person(adult(205), 23), seed=7)))
    other = replace(stranger, personal_id=adult(206).personal_id)
    refusal = await refused(_register(office, key, other, request_id="counter-8"))
    repeated = await refused(_register(office, key, other, request_id="counter-8"))
    assert refusal.reason == repeated.reason == "REGISTRY_MISMATCH"
    subject = office.uow.run_now(lambda r: r.accounts.subject_of(other.personal_id))
    assert len(office.uow.run_now(lambda r: r.audit.history(subject))) == 1


# ---- who may call ------------------------------------------------------------


async def test_only_an_officer_with_the_registration_role_registers(office: World) -> None:
    _, unlock_key = _officer(office, OfficerRole.UNLOCK)
    retired, retired_key = _officer(office)
    office.uow.run_now(lambda r: r.officers.disable(retired.id, office.clock()))
    cmd = _command()

    nothing = await refused(_register(office, OfficerCall(None), cmd))
    wrong = await refused(_register(office, "eido_not-a-key", cmd))
    disabled = await refused(_register(office, retired_key, cmd))
    citizen = await refused(_register(office, OfficerCall(None, other_credential=True), cmd))
    role = await refused(_register(office, unlock_key, cmd))

    for refusal in (nothing, wrong, disabled):
        assert isinstance(refusal, Unauthenticated) and refusal.reason == "OFFICER_KEY_INVALID"
    assert isinstance(citizen, PermissionDenied) and citizen.reason == "OFFICER_REQUIRED"
    assert isinstance(role, PermissionDenied) and role.reason == "OFFICER_ROLE_MISSING"
    assert role.metadata == {"role": "registration"}
    assert _accounts(office) == [] and office.audit_events(NGOC) == []


async def test_a_caller_who_is_not_an_officer_learns_nothing_of_the_request(office: World) -> None:
    """Refused before the request is read: a bad field is not pointed out."""
    bad = _command(personal_id="12", capture=CaptureInput(b"", ()))
    refusal = await refused(_register(office, OfficerCall(None, other_credential=True), bad))
    assert refusal.reason == "OFFICER_REQUIRED"
    _, key = _officer(office)
    invalid = await refused(_register(office, key, bad))
    assert isinstance(invalid, InvalidInput) and invalid.reason == "INVALID_FIELDS"


async def test_an_officer_without_the_unlock_role_does_not_unlock(office: World) -> None:
    await office.active(NGOC)
    await office.lock(LockProof.PASSWORD, citizen=NGOC, password="correct horse battery staple")
    _, registration_key = _officer(office, OfficerRole.REGISTRATION)
    refusal = await refused(office.unlock_by_officer(registration_key, NGOC))
    assert isinstance(refusal, PermissionDenied) and refusal.metadata == {"role": "unlock"}
    assert office.state_of(NGOC) is AccountState.LOCKED
    _, unlock_key = _officer(office, OfficerRole.UNLOCK)
    await office.unlock_by_officer(unlock_key, NGOC)
    assert office.state_of(NGOC) is AccountState.ACTIVE


# ---- the capture's shape -----------------------------------------------------


async def test_a_capture_that_is_not_two_to_ten_fingers_is_refused(office: World) -> None:
    _, key = _officer(office)
    capture = capture_of(PERSON, seed=8, fingers=list(Finger))
    portrait = capture.portrait.packed
    prints = [(f.value, t.packed) for f, t in capture.fingerprints.items()]

    one = await refused(_register(office, key, _command(CaptureInput(portrait, (prints[0],)))))
    twice = CaptureInput(portrait, (prints[0], prints[0]))
    duplicate = await refused(_register(office, key, _command(twice)))
    eleven = CaptureInput(portrait, (*prints, (1, prints[1][1])))
    many = await refused(_register(office, key, _command(eleven)))
    nameless = CaptureInput(portrait, ((0, prints[0][1]), prints[1]))
    unnamed = await refused(_register(office, key, _command(nameless)))
    short = CaptureInput(portrait[:-4], (prints[0], (prints[1][0], b"\x00" * 256)))
    several = await refused(_register(office, key, _command(short)))

    assert (one.reason, duplicate.reason, unnamed.reason) == (
        "FINGERPRINT_COUNT_INVALID",
        "FINGER_INVALID",
        "FINGER_INVALID",
    )
    assert isinstance(many, InvalidInput) and "FINGERPRINT_COUNT_INVALID" in {
        v.reason for v in many.violations
    }
    assert isinstance(several, InvalidInput) and several.reason == "INVALID_FIELDS"
    assert [(v.field, v.reason) for v in several.violations] == [
        ("capture.portrait", "BIOMETRIC_TEMPLATE_INVALID"),
        ("capture.fingerprints[1].template", "BIOMETRIC_TEMPLATE_INVALID"),
    ]
    assert _accounts(office) == []


async def test_a_child_under_fourteen_is_not_registered_at_the_counter(world: World) -> None:
    """Children are registered under a guardian's account instead."""
    born = date(2016, 6, 1)
    child = Demographics(
        make_personal_id("048", born, Gender.MALE, 208).value, "Võ Minh Khang", born, Gender.MALE
    )
    person = enrolled_person(child, seed=25)
    world.uow.run_now(lambda r: r.registry.put_person(person))
    _, key = _officer(world)
    cmd = _command(
        _input(capture_of(person, seed=14)),
        personal_id=child.personal_id,
        full_name=child.full_name,
        birth_date=born.isoformat(),
        gender=Gender.MALE,
    )
    refusal = await refused(_register(world, key, cmd))
    assert isinstance(refusal, PreconditionFailed) and refusal.reason == "AGE_BELOW_MINIMUM"
    assert _accounts(world) == []


# ---- upgrading a level-1 account ---------------------------------------------


async def test_an_active_level_1_account_is_upgraded_and_the_citizen_told(office: World) -> None:
    await office.active(NGOC)
    officer, key = _officer(office)
    upgraded = await _upgrade(office, key, _input(capture_of(PERSON, seed=9)))
    assert (upgraded.level, upgraded.state) == (AccountLevel.LEVEL_2, AccountState.ACTIVE)
    assert _accounts(office)[0].level is AccountLevel.LEVEL_2
    assert upgraded.id in office.uow.state.biometrics
    assert office.sent_to(NGOC.phone)[-1] is NoticeKind.ACCOUNT_LEVEL_2
    assert office.sent_to(NGOC.email) == [NoticeKind.ACCOUNT_LEVEL_2]
    assert _audit(office, "upgrade_level2") == [("ok", None, officer.id)]

    again = await refused(_upgrade(office, key, _input(capture_of(PERSON, seed=10))))
    assert isinstance(again, PreconditionFailed) and again.reason == "ACCOUNT_ALREADY_LEVEL_2"


async def test_an_upgrade_needs_a_matching_capture_and_an_active_account(office: World) -> None:
    _, key = _officer(office)
    capture = _input(capture_of(PERSON, seed=11))
    missing = await refused(_upgrade(office, key, capture))
    assert isinstance(missing, NotFound) and missing.reason == "ACCOUNT_NOT_FOUND"
    await office.register(NGOC)
    pending = await refused(_upgrade(office, key, capture))
    assert pending.reason == "ACCOUNT_NOT_ACTIVE"
    await office.activate(NGOC)
    stranger = _input(capture_of(enrolled_person(adult(207), 24), seed=12))
    mismatch = await refused(_upgrade(office, key, stranger))
    assert mismatch.reason == "REGISTRY_MISMATCH"
    office.set_state(NGOC, AccountState.LOCKED)
    locked = await refused(_upgrade(office, key, capture))
    assert locked.reason == "ACCOUNT_LOCKED"
    assert _accounts(office)[0].level is AccountLevel.LEVEL_1
    assert office.uow.state.biometrics == {}
    assert [o for o, _, _ in _audit(office, "upgrade_level2")] == ["rejected"] * 4


async def test_an_upgrade_that_loses_a_race_says_what_changed_and_counts_once(
    office: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a lock (or another officer's upgrade) can commit between
    the upgrade's read of the account and its UPDATE. The officer hears what
    changed, as a later call would; a change undone meanwhile answers ABORTED
    with nothing counted, so the retry is the call the officer's allowance
    counts (an allowance of one: counted twice, the retry was refused)."""
    office.ctx = replace(
        office.ctx,
        officer_limits=OfficerLimits(per_hour=Limit("officer-hour", 1, timedelta(hours=1))),
    )
    await office.active(NGOC)
    _, key = _officer(office)
    capture = _input(capture_of(PERSON, seed=15))
    raise_level = FakeAccounts.raise_level

    def changed_and_back(self: FakeAccounts, account_id: str, level: AccountLevel) -> bool:
        return False  # as if locked and unlocked between the read and the UPDATE

    monkeypatch.setattr(FakeAccounts, "raise_level", changed_and_back)
    aborted = await refused(_upgrade(office, key, capture, request_id="race-1"))
    assert isinstance(aborted, Aborted) and aborted.reason == "CONCURRENT_REQUEST"
    assert _audit(office, "upgrade_level2") == []
    monkeypatch.setattr(FakeAccounts, "raise_level", raise_level)
    raised = await _upgrade(office, key, capture, request_id="race-1")
    assert raised.level is AccountLevel.LEVEL_2

    _, other = _officer(office)
    office.set_state(NGOC, AccountState.ACTIVE)
    for account in office.uow.state.accounts.values():
        account.level = AccountLevel.LEVEL_1

    def locked_meanwhile(self: FakeAccounts, account_id: str, level: AccountLevel) -> bool:
        office.set_state(NGOC, AccountState.LOCKED)
        return raise_level(self, account_id, level)

    monkeypatch.setattr(FakeAccounts, "raise_level", locked_meanwhile)
    locked = await refused(_upgrade(office, other, capture, request_id="race-2"))
    assert locked.reason == "ACCOUNT_LOCKED"
    assert _audit(office, "upgrade_level2")[-1][:2] == ("rejected", "ACCOUNT_LOCKED")
    # Kept as the request id's answer: the retry is told the same, uncounted.
    again = await refused(_upgrade(office, other, capture, request_id="race-2"))
    assert again.reason == "ACCOUNT_LOCKED"


async def test_an_officer_without_the_role_does_not_upgrade(office: World) -> None:
    await office.active(NGOC)
    _, key = _officer(office, OfficerRole.UNLOCK)
    refusal = await refused(_upgrade(office, key, _input(capture_of(PERSON, seed=13))))
    assert refusal.reason == "OFFICER_ROLE_MISSING"
    assert _accounts(office)[0].level is AccountLevel.LEVEL_1


# ---- how much one officer's key may ask ----------------------------------------


async def test_an_officers_key_walking_id_numbers_is_stopped_and_learns_nothing_more(
    office: World,
) -> None:
    """Officers get precise answers (who has an account, in which state): a
    stolen key asking about every ID number is refused once its allowance is
    spent, with the same answer for an ID number with an account and one
    without, and nothing audited in their histories. Retries of answered
    calls are not new calls; other officers keep their own allowance."""
    hour = Limit("officer-hour", 3, timedelta(hours=1))
    office.ctx = replace(office.ctx, officer_limits=OfficerLimits(per_hour=hour))
    await office.active(NGOC)
    _, key = _officer(office)
    _, colleague = _officer(office)
    capture = _input(capture_of(PERSON, seed=14))
    nobody = adult(208).personal_id
    for n in range(3):
        missing = await refused(_upgrade(office, key, capture, request_id=f"walk-{n}", pid=nobody))
        assert missing.reason == "ACCOUNT_NOT_FOUND"
    again = await refused(_upgrade(office, key, capture, request_id="walk-0", pid=nobody))
    assert again.reason == "ACCOUNT_NOT_FOUND"  # a retry, answered as before

    with_account = await refused(_upgrade(office, key, capture, request_id="walk-3"))
    without = await refused(_upgrade(office, key, capture, request_id="walk-4", pid=nobody))
    registering = await refused(_register(office, key, _command(), request_id="walk-5"))
    for refusal in (with_account, without, registering):
        assert refusal.reason == "TOO_MANY_REQUESTS"
        assert int(refusal.metadata["retry_after_seconds"]) > 0
    assert astuple(with_account) == astuple(without)
    assert _audit(office, "upgrade_level2") == []  # not looked at, not recorded
    assert _accounts(office)[0].level is AccountLevel.LEVEL_1

    raised = await _upgrade(office, colleague, capture, request_id="colleague-1")
    assert raised.level is AccountLevel.LEVEL_2
    office.clock.advance(timedelta(hours=1))
    assert (await refused(_upgrade(office, key, capture, request_id="walk-6"))).reason == (
        "ACCOUNT_ALREADY_LEVEL_2"
    )
