"""Dependants under 14, against the fake store: a guardian registers a child
the registry records as theirs, lists it, shares its attributes by QR; the
guardian is told when it turns 14; the child takes the account over with
Register and Activate, and the guardian no longer acts for it."""

from __future__ import annotations

import dataclasses
from dataclasses import astuple
from datetime import date, datetime, timedelta

import pytest

from eid_service.demo import demo_person
from eid_service.domain.account import AccountState
from eid_service.domain.citizen import Demographics, Gender, age_on
from eid_service.domain.dependant import Dependant, take_over_date
from eid_service.domain.errors import (
    AlreadyExists,
    DomainError,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    Unauthenticated,
)
from eid_service.domain.notices import NoticeKind
from eid_service.domain.personal_id import make_personal_id
from eid_service.domain.share import Attribute
from eid_service.domain.share_grant import ShareState
from eid_service.use_cases.access_history import list_access_history
from eid_service.use_cases.deceased import record_death
from eid_service.use_cases.dependants import (
    DependantPage,
    RegisterDependantCommand,
    list_dependants,
    notice_coming_of_age,
    register_dependant,
)
from eid_service.use_cases.lock import LockProof
from eid_service.use_cases.share import IssuedShare, ShareCommand, share_via_qr
from tests.unit.fake_store import START
from tests.unit.use_case_kit import LAN, MINH, PASSWORD, Citizen, World, as_seen, refused

A = Attribute


def _kid(name: str, born: date, gender: Gender, serial: int, phone: str) -> Citizen:
    pid = make_personal_id("001", born, gender, serial).value
    return Citizen(Demographics(pid, name, born, gender), phone)


# START is 2025-03-03: KID turns 14 a week later, LEAP on 1 March 2026.
KID = _kid("Nguyễn Minh Khôi", date(2011, 3, 10), Gender.MALE, 510001, "0915000001")
SISTER = _kid("Nguyễn Thu Hà", date(2016, 8, 1), Gender.FEMALE, 510002, "0915000002")
BABY = _kid("Nguyễn Bảo An", date(2023, 1, 5), Gender.FEMALE, 510003, "0915000003")
LEAP = _kid("Nguyễn Gia Huy", date(2012, 2, 29), Gender.MALE, 510004, "0915000004")
TEEN = _kid("Nguyễn Văn Tú", date(2010, 6, 1), Gender.MALE, 510005, "0915000005")
MINHS = _kid("Trần Ngọc Mai", date(2018, 4, 4), Gender.FEMALE, 510006, "0915000006")
WARDS = (KID, SISTER, BABY, LEAP, TEEN)


@pytest.fixture
def family(world: World) -> World:
    """LAN is the registry's guardian of KID, SISTER, BABY, LEAP and TEEN
    (14 already); MINH is MINHS's."""

    people = [demo_person(k.demographics, guardians=(LAN.personal_id,)) for k in WARDS]
    people.append(demo_person(MINHS.demographics, guardians=(MINH.personal_id,)))
    world.uow.run_now(lambda r: [r.registry.put_person(p) for p in people])
    return world


async def _signed_in(world: World, citizen: Citizen) -> str:
    await world.active(citizen)
    return (await world.sign_in(citizen)).tokens.access_token


def _command(kid: Citizen, **changes: object) -> RegisterDependantCommand:
    d = kid.demographics
    fields: dict[str, object] = {
        "personal_id": d.personal_id,
        "full_name": d.full_name,
        "birth_date": d.birth_date.isoformat(),
        "gender": d.gender,
    }
    fields.update(changes)
    return RegisterDependantCommand(**fields)  # type: ignore[arg-type]


async def _register(
    world: World, session: str | None, kid: Citizen, *, request_id: str = "", **changes: object
) -> Dependant:
    cmd = _command(kid, **changes)
    reply = world.reply(Dependant, "register_dependant", astuple(cmd), request_id)
    return await register_dependant(world.uow, world.ctx, session, cmd, reply)


async def _list(world: World, session: str, page_size: int = 0, token: str = "") -> DependantPage:
    return await list_dependants(world.uow, world.ctx, session, page_size, token)


async def _share_for(
    world: World, session: str, dependant_id: str, attributes: list[Attribute | None]
) -> IssuedShare:
    cmd = ShareCommand(attributes, "", None, dependant_account_id=dependant_id)
    reply = world.reply(IssuedShare, "share", astuple(cmd), "")
    return await share_via_qr(world.uow, world.ctx, session, cmd, reply)


async def test_a_guardian_registers_a_ward_as_a_dependant_with_no_phone_or_password(
    family: World,
) -> None:
    session = await _signed_in(family, LAN)
    dependant = await _register(family, session, KID)

    guardian = family.uow.run_now(lambda r: r.accounts.find_by_personal_id(LAN.personal_id))
    assert guardian is not None
    account = dependant.account
    assert account.state is AccountState.DEPENDANT
    assert (account.phone, account.email, account.password_hash) == ("", None, None)
    assert dependant.guardian_account_id == guardian.id
    assert dependant.take_over_on == date(2025, 3, 10)
    stored = family.uow.run_now(lambda r: r.dependants.get(account.id))
    assert stored is not None and stored.account.demographics == KID.demographics
    # Audited under the child, as done by the guardian.
    [event] = family.audit_events(KID)
    assert (event.action, event.outcome, event.actor) == ("register_dependant", "ok", guardian.id)
    assert [d.account.id for d in (await _list(family, session)).dependants] == [account.id]


async def test_a_retried_request_id_gets_the_first_answer(family: World) -> None:
    session = await _signed_in(family, LAN)
    first = await _register(family, session, KID, request_id="kid-1")
    again = await _register(family, session, KID, request_id="kid-1")
    assert again == first
    assert len(family.uow.state.dependants) == 1


async def test_a_child_the_registry_does_not_give_the_guardian_is_refused_alike_whoever_it_is(
    family: World,
) -> None:
    session = await _signed_in(family, LAN)
    nobody = make_personal_id("001", date(2017, 1, 1), Gender.MALE, 777777).value

    someone_elses = await refused(_register(family, session, MINHS))
    unknown = await refused(
        _register(
            family,
            session,
            MINHS,
            personal_id=nobody,
            birth_date="2017-01-01",
            gender=Gender.MALE,
        )
    )

    assert isinstance(someone_elses, PermissionDenied)
    assert someone_elses.reason == "GUARDIAN_NOT_RECORDED"
    # Nothing tells whether the ID number exists: the registry is not probed.
    assert as_seen(unknown) == as_seen(someone_elses)
    assert family.uow.state.dependants == {}


async def test_a_child_of_14_or_over_registers_themself(family: World) -> None:
    session = await _signed_in(family, LAN)
    error = await refused(_register(family, session, TEEN))
    assert isinstance(error, PreconditionFailed)
    assert error.reason == "DEPENDANT_AGE_EXCEEDED"
    assert error.metadata == {"maximum_age": "13"}


async def test_a_wards_data_must_match_the_registry(family: World) -> None:
    session = await _signed_in(family, LAN)
    error = await refused(_register(family, session, KID, full_name="Nguyễn Minh Khoa"))
    assert isinstance(error, PreconditionFailed) and error.reason == "REGISTRY_MISMATCH"


async def test_a_child_with_an_account_is_not_registered_twice(family: World) -> None:
    session = await _signed_in(family, LAN)
    await _register(family, session, KID)
    error = await refused(_register(family, session, KID))
    assert isinstance(error, AlreadyExists) and error.reason == "ACCOUNT_ALREADY_EXISTS"


async def test_only_a_signed_in_guardian_registers(family: World) -> None:
    error = await refused(_register(family, None, KID))
    assert isinstance(error, Unauthenticated) and error.reason == "SESSION_MISSING"
    error = await refused(_register(family, "not-a-session", KID))
    assert isinstance(error, Unauthenticated) and error.reason == "SESSION_INVALID"


async def test_dependants_are_listed_oldest_first_in_pages(family: World) -> None:
    session = await _signed_in(family, LAN)
    registered = []
    for kid in (KID, SISTER, BABY, LEAP):
        registered.append((await _register(family, session, kid)).account.id)
        family.clock.advance(timedelta(seconds=1))

    first = await _list(family, session, page_size=3)
    second = await _list(family, session, page_size=3, token=first.next_page_token)

    assert [d.account.id for d in first.dependants] == registered[:3]
    assert [d.account.id for d in second.dependants] == registered[3:]
    assert second.next_page_token == ""
    # Another guardian's list does not show them.
    other = await _signed_in(family, MINH)
    assert (await _list(family, other)).dependants == []


async def test_nobody_signs_in_as_a_dependant(family: World) -> None:
    session = await _signed_in(family, LAN)
    await _register(family, session, KID)
    for password in (PASSWORD, ""):
        error = await refused(family.sign_in(KID, password or "any password at all"))
        assert isinstance(error, Unauthenticated) and error.reason == "INVALID_CREDENTIALS"


async def test_the_guardian_shares_the_childs_attributes_and_a_party_redeems_them(
    family: World,
) -> None:
    session = await _signed_in(family, LAN)
    dependant = await _register(family, session, KID)
    guardian_id = dependant.guardian_account_id
    bank = family.party()

    issued = await _share_for(
        family, session, dependant.account.id, [A.FULL_NAME, A.BIRTH_DATE, A.PHONE_NUMBER]
    )
    assert issued.grant.account_id == dependant.account.id
    assert issued.grant.issued_by == guardian_id
    verified = await family.redeem(bank, issued.token)

    assert verified.verified
    # The child has no phone: nothing is released for it.
    assert verified.released == {
        A.FULL_NAME: KID.demographics.full_name,
        A.BIRTH_DATE: "2011-03-10",
    }
    events = [(e.action, e.outcome, e.actor) for e in family.audit_events(KID)]
    assert events[1:] == [
        ("share_for_dependant", "ok", guardian_id),
        ("verify.qr_share", "verified", guardian_id),
    ]
    history = await list_access_history(
        family.uow, family.ctx, session, 0, "", dependant_account_id=dependant.account.id
    )
    [record] = history.records
    assert record.party_id == bank.id and record.guardian_account_id == guardian_id
    # The guardian's own history is untouched.
    assert (await list_access_history(family.uow, family.ctx, session, 0, "")).records == []


async def test_nobody_else_acts_for_a_dependant(family: World) -> None:
    session = await _signed_in(family, LAN)
    dependant = await _register(family, session, KID)
    stranger = await _signed_in(family, MINH)

    for target in (dependant.account.id, "acc_" + "0" * 26, "not an id"):
        error = await refused(_share_for(family, stranger, target, [A.FULL_NAME]))
        assert isinstance(error, NotFound) and error.reason == "DEPENDANT_NOT_FOUND"
    error = await refused(
        list_access_history(
            family.uow, family.ctx, stranger, 0, "", dependant_account_id=dependant.account.id
        )
    )
    assert error.reason == "DEPENDANT_NOT_FOUND"
    issued = await _share_for(family, session, dependant.account.id, [A.FULL_NAME])
    listing = await refused(family.shares(stranger, dependant=dependant.account.id))
    revoking = await refused(
        family.revoke_share(stranger, issued.grant.id, dependant=dependant.account.id)
    )
    assert (listing.reason, revoking.reason) == ("DEPENDANT_NOT_FOUND", "DEPENDANT_NOT_FOUND")
    assert family.uow.state.shares[issued.grant.id].revoked_at is None


async def test_a_guardian_lists_and_withdraws_the_shares_made_for_a_dependant(
    family: World,
) -> None:
    session = await _signed_in(family, LAN)
    registered = await _register(family, session, KID)
    kid, guardian_id = registered.account.id, registered.guardian_account_id
    sister = (await _register(family, session, SISTER)).account.id
    bank = family.party()
    first = await _share_for(family, session, kid, [A.FULL_NAME])
    family.clock.advance(timedelta(seconds=1))  # newest first
    second = await _share_for(family, session, kid, [A.BIRTH_DATE])
    sisters = await _share_for(family, session, sister, [A.FULL_NAME])
    own = await family.share(session, [A.FULL_NAME])

    # Each account's shares apart: the guardian's own, and each child's.
    assert [g.id for g in (await family.shares(session)).shares] == [own.grant.id]
    page = await family.shares(session, dependant=kid, page_size=1)
    rest = await family.shares(session, dependant=kid, page_token=page.next_page_token)
    assert [g.id for g in (*page.shares, *rest.shares)] == [second.grant.id, first.grant.id]
    assert [g.id for g in (await family.shares(session, dependant=sister)).shares] == [
        sisters.grant.id
    ]

    revoked = await family.revoke_share(session, first.grant.id, dependant=kid)

    assert revoked.revoked_at is not None
    assert (await refused(family.redeem(bank, first.token))).reason == "SHARE_REVOKED"
    assert (await family.redeem(bank, second.token)).verified
    # In the child's history, as the guardian's act; nothing in the guardian's.
    [event] = [e for e in family.audit_events(KID) if e.action == "revoke_share"]
    assert (event.outcome, event.actor, event.account_id) == ("ok", guardian_id, kid)
    assert not [a for a, _, _ in family.history(LAN) if a == "revoke_share"]
    # A share is withdrawn only under the account it belongs to.
    for share_id, named in ((sisters.grant.id, kid), (own.grant.id, kid), (second.grant.id, "")):
        error = await refused(family.revoke_share(session, share_id, dependant=named))
        assert isinstance(error, NotFound) and error.reason == "SHARE_NOT_FOUND"
    assert all(
        family.uow.state.shares[g.grant.id].revoked_at is None for g in (second, sisters, own)
    )


@pytest.mark.parametrize(
    "born",
    [date(2012, 2, 29), date(2016, 2, 29), date(2010, 2, 28), date(2011, 3, 1), date(2013, 12, 31)],
)
def test_the_take_over_day_is_the_day_the_child_turns_14(born: date) -> None:
    day = take_over_date(born)
    assert age_on(born, day - timedelta(days=1)) == 13
    assert age_on(born, day) == 14
    if (born.month, born.day) == (2, 29):  # 14 years on is never a leap year
        assert (day.month, day.day) == (3, 1)


async def test_the_guardian_is_told_once_when_the_child_turns_14(family: World) -> None:
    session = await _signed_in(family, LAN)
    kid = await _register(family, session, KID)
    await _register(family, session, SISTER)

    assert await notice_coming_of_age(family.uow, family.ctx) == 0
    family.clock.advance(timedelta(days=6))  # 2025-03-09: still 13
    assert await notice_coming_of_age(family.uow, family.ctx) == 0
    assert NoticeKind.DEPENDANT_OF_AGE not in family.sent_to(LAN.phone)

    family.clock.advance(timedelta(days=1))  # 2025-03-10: 14 today
    assert await notice_coming_of_age(family.uow, family.ctx) == 1
    assert await notice_coming_of_age(family.uow, family.ctx) == 0

    assert family.sent_to(LAN.phone).count(NoticeKind.DEPENDANT_OF_AGE) == 1
    assert ("of_age", "guardian_told", None) in family.history(KID)
    session = (await family.sign_in(LAN)).tokens.access_token
    listed = {d.account.id: d for d in (await _list(family, session)).dependants}
    assert listed[kid.account.id].can_take_over(family.clock().date())
    assert listed[kid.account.id].notified_at is not None


async def test_a_sweep_missed_for_months_still_tells_the_guardian(family: World) -> None:
    session = await _signed_in(family, LAN)
    await _register(family, session, KID)
    family.clock.advance(timedelta(days=200))
    assert await notice_coming_of_age(family.uow, family.ctx) == 1


async def test_a_child_born_on_29_february_is_due_on_1_march(family: World) -> None:
    session = await _signed_in(family, LAN)
    await _register(family, session, LEAP)
    family.clock.now = datetime(2026, 2, 28, 23, 0, tzinfo=START.tzinfo)
    assert await notice_coming_of_age(family.uow, family.ctx) == 0
    family.clock.advance(timedelta(hours=1))  # 2026-03-01
    assert await notice_coming_of_age(family.uow, family.ctx) == 1


async def _after_birthday(family: World) -> tuple[str, Dependant]:
    session = await _signed_in(family, LAN)
    dependant = await _register(family, session, KID)
    family.clock.advance(timedelta(days=7))
    # The guardian's session has expired meanwhile: sign in again.
    return (await family.sign_in(LAN)).tokens.access_token, dependant


async def test_a_child_under_14_cannot_take_the_account_over(family: World) -> None:
    session = await _signed_in(family, LAN)
    await _register(family, session, KID)
    error = await refused(family.register(KID))
    assert isinstance(error, PreconditionFailed) and error.reason == "AGE_BELOW_MINIMUM"
    assert family.state_of(KID) is AccountState.DEPENDANT


async def test_only_the_childs_own_registry_data_take_it_over(family: World) -> None:
    await _after_birthday(family)
    error = await refused(family.register(KID, full_name="Someone Else"))
    assert isinstance(error, PreconditionFailed) and error.reason == "REGISTRY_MISMATCH"
    assert family.state_of(KID) is AccountState.DEPENDANT


async def test_at_14_the_child_takes_the_account_over_and_the_guardian_stops_acting(
    family: World,
) -> None:
    session, dependant = await _after_birthday(family)
    bank = family.party()
    earlier = await _share_for(family, session, dependant.account.id, [A.FULL_NAME])

    registered = await family.register(KID)

    # The same account, now the child's: PENDING, with its own phone.
    assert registered.account.id == dependant.account.id
    assert registered.account.state is AccountState.PENDING
    assert NoticeKind.ACTIVATION_CODE in family.sent_to(KID.phone)
    assert NoticeKind.DEPENDANT_TAKE_OVER_STARTED in family.sent_to(LAN.phone)
    # The guardian's shares ended; the guardian can no longer share.
    withdrawn = await refused(family.redeem(bank, earlier.token))
    assert withdrawn.reason == "SHARE_REVOKED"
    error = await refused(_share_for(family, session, dependant.account.id, [A.FULL_NAME]))
    assert isinstance(error, PreconditionFailed) and error.reason == "DEPENDANT_TAKEN_OVER"
    # Listed while the take-over is under way.
    [listed] = (await _list(family, session)).dependants
    assert listed.account.state is AccountState.PENDING

    account = await family.activate(KID)

    assert account.state is AccountState.ACTIVE
    assert (await _list(family, session)).dependants == []
    error = await refused(_share_for(family, session, dependant.account.id, [A.FULL_NAME]))
    assert error.reason == "DEPENDANT_TAKEN_OVER"
    error = await refused(
        list_access_history(
            family.uow, family.ctx, session, 0, "", dependant_account_id=dependant.account.id
        )
    )
    assert error.reason == "DEPENDANT_TAKEN_OVER"
    for acting in (
        family.shares(session, dependant=dependant.account.id),
        family.revoke_share(session, earlier.grant.id, dependant=dependant.account.id),
    ):
        assert (await refused(acting)).reason == "DEPENDANT_TAKEN_OVER"
    assert NoticeKind.DEPENDANT_TAKEN_OVER in family.sent_to(LAN.phone)
    # The child signs in, and shares for itself.
    child_session = (await family.sign_in(KID)).tokens.access_token
    own = await family.share(child_session, [A.FULL_NAME])
    assert (await family.redeem(bank, own.token)).verified
    assert [(a, o) for a, o, _ in family.history(KID) if a == "take_over"] == [
        ("take_over", "started"),
        ("take_over", "completed"),
    ]


async def test_a_guardians_share_that_outlived_the_start_ends_when_the_child_activates(
    family: World,
) -> None:
    """A share committed just after the take-over's start revoked the rest
    (PostgreSQL), put back here as the race leaves it: unredeemable, it was
    listed ACTIVE in the child's own list."""
    session, dependant = await _after_birthday(family)
    late = await _share_for(family, session, dependant.account.id, [A.FULL_NAME])
    await family.register(KID)
    shares = family.uow.state.shares
    shares[late.grant.id] = dataclasses.replace(shares[late.grant.id], revoked_at=None)

    await family.activate(KID)

    child_session = (await family.sign_in(KID)).tokens.access_token
    [listed] = (await family.shares(child_session)).shares
    assert (listed.id, listed.state(family.clock())) == (late.grant.id, ShareState.REVOKED)


async def test_a_second_take_over_is_an_ordinary_pending_registration(family: World) -> None:
    await _after_birthday(family)
    await family.register(KID)
    error: DomainError = await refused(family.register(KID))
    assert isinstance(error, AlreadyExists) and error.reason == "ACCOUNT_PENDING"


async def test_locking_the_guardians_account_ends_the_shares_it_made_for_dependants(
    family: World,
) -> None:
    session = await _signed_in(family, LAN)
    dependant = await _register(family, session, KID)
    bank = family.party()
    issued = await _share_for(family, session, dependant.account.id, [A.FULL_NAME])

    await family.lock(LockProof.SESSION, access_token=session)

    error = await refused(family.redeem(bank, issued.token))
    assert isinstance(error, PreconditionFailed) and error.reason == "SHARE_REVOKED"
    # The child's account itself is untouched.
    assert family.state_of(KID) is AccountState.DEPENDANT
    # A share the lock's withdrawal missed (PostgreSQL: committed just after
    # it) is refused too, by the guardian's state at redemption.
    shares = family.uow.state.shares
    shares[issued.grant.id] = dataclasses.replace(shares[issued.grant.id], revoked_at=None)
    late = await refused(family.redeem(bank, issued.token))
    assert isinstance(late, PreconditionFailed) and late.reason == "SHARE_REVOKED"


async def test_a_stranded_dependant_is_taken_on_by_its_other_recorded_parent(
    family: World,
) -> None:
    """The registry records LAN and MINH as the child's parents. While LAN
    is locked (temporary), the child is still LAN's; once LAN's death is
    recorded, nobody could act for it: MINH, signed in, takes it on."""
    both = _kid("Trần Nguyễn Bảo Ngọc", date(2019, 9, 9), Gender.FEMALE, 510007, "0915000007")
    person = demo_person(both.demographics, guardians=(LAN.personal_id, MINH.personal_id))
    family.uow.run_now(lambda r: r.registry.put_person(person))
    lan = await _signed_in(family, LAN)
    first = await _register(family, lan, both)
    minh = await _signed_in(family, MINH)

    await family.lock(LockProof.SESSION, access_token=lan)
    locked = await refused(_register(family, minh, both))
    assert isinstance(locked, AlreadyExists) and locked.reason == "ACCOUNT_ALREADY_EXISTS"

    await record_death(family.uow, family.ctx, LAN.personal_id, START.date())
    taken = await _register(family, minh, both, request_id="take-on-1")
    assert taken.account.id == first.account.id
    assert taken.account.state is AccountState.DEPENDANT
    assert taken.guardian_account_id != first.guardian_account_id
    assert [d.account.id for d in (await _list(family, minh)).dependants] == [first.account.id]
    assert await _register(family, minh, both, request_id="take-on-1") == taken
    again = await refused(_register(family, minh, both))
    assert isinstance(again, AlreadyExists) and again.reason == "ACCOUNT_ALREADY_EXISTS"
    issued = await _share_for(family, minh, first.account.id, [A.FULL_NAME])
    assert issued.grant.account_id == first.account.id
