"""Dependants under 14 through the gRPC API, on SQLite and PostgreSQL: a
signed-in guardian registers a child the registry records as theirs, lists
it and shares its attributes by QR; the refusals; and the birthday hand-over
with the server's clock moved across the child's 14th birthday."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial

import grpc
import pytest
from sqlalchemy import inspect

from eid.v1 import identity_service_pb2 as pb
from eid_client.client import EidClient
from eid_client.errors import EidError
from eid_service.demo import demo_person
from eid_service.domain.citizen import Demographics, Gender
from eid_service.domain.dependant import take_over_date
from eid_service.domain.notices import NoticeKind
from eid_service.domain.personal_id import make_personal_id
from eid_service.use_cases.deceased import record_death
from eid_service.use_cases.dependants import notice_coming_of_age
from eid_service.use_cases.ports import OutgoingMessage, Repositories
from tests.integration.conftest import Party
from tests.integration.flows import PASSWORD, phone_of, register, register_and_activate
from tests.integration.harness import ServerHarness

# The hand-over test's sweep runs this often (the server default is 5 minutes).
SWEEP_SECONDS = 0.2
TODAY = datetime.now(UTC).date()


def _person(name: str, born: date, gender: Gender, serial: int) -> Demographics:
    return Demographics(make_personal_id("079", born, gender, serial).value, name, born, gender)


def _born_turning_14_in(days: int) -> date:
    """A birth date whose 14th birthday is `days` (or one more) days from today."""
    for ahead in (days, days + 1):
        day = TODAY + timedelta(days=ahead)
        try:
            born = day.replace(year=day.year - 14)
        except ValueError:  # 29 February 14 years back does not exist
            continue
        assert take_over_date(born) == day
        return born
    raise AssertionError("unreachable")


PARENT = _person("Phạm Thị Thu Trang", date(1985, 7, 12), Gender.FEMALE, 610001)
OTHER_PARENT = _person("Lê Quốc Bảo", date(1980, 1, 20), Gender.MALE, 610002)
KID = _person("Phạm Minh Khang", _born_turning_14_in(3), Gender.MALE, 610003)
SISTER = _person("Phạm Ngọc Diệp", TODAY.replace(year=TODAY.year - 6, day=1), Gender.FEMALE, 610004)
BABY = _person("Phạm An Nhiên", TODAY.replace(year=TODAY.year - 2, day=2), Gender.FEMALE, 610005)
TEEN = _person("Phạm Đức Anh", TODAY.replace(year=TODAY.year - 15, day=3), Gender.MALE, 610006)
NEIGHBOUR = _person("Lê Thị Hồng", TODAY.replace(year=TODAY.year - 8, day=4), Gender.FEMALE, 610007)


def _put_family(harness: ServerHarness) -> None:
    people = [demo_person(PARENT), demo_person(OTHER_PARENT)]
    people += [
        demo_person(kid, guardians=(PARENT.personal_id,)) for kid in (KID, SISTER, BABY, TEEN)
    ]
    people.append(demo_person(NEIGHBOUR, guardians=(OTHER_PARENT.personal_id,)))

    def put(r: Repositories) -> None:
        for person in people:
            r.registry.put_person(person)

    harness.run(harness.runtime.uow.atomically(put))


@pytest.fixture
def family(harness: ServerHarness) -> ServerHarness:
    _put_family(harness)
    return harness


@dataclass
class Guardian:
    client: EidClient
    account_id: str


def _sign_in(harness: ServerHarness, client: EidClient, citizen: Demographics) -> Guardian:
    signed = client.sign_in(personal_id=citizen.personal_id, password=PASSWORD)
    return Guardian(client, signed.account.account_id)


@pytest.fixture
def guardian(family: ServerHarness, citizen_app: EidClient) -> Guardian:
    register_and_activate(family, citizen_app, PARENT)
    return _sign_in(family, citizen_app, PARENT)


def _register_dependant(client: EidClient, kid: Demographics, **changes: object) -> pb.Dependant:
    fields: dict[str, object] = {
        "personal_id": kid.personal_id,
        "full_name": kid.full_name,
        "birth_date": kid.birth_date,
        "gender": kid.gender.value,
    }
    fields.update(changes)
    return client.register_dependant(**fields).dependant  # type: ignore[arg-type]


def _refusal(call: Callable[[], object]) -> EidError:
    with pytest.raises(EidError) as caught:
        call()
    return caught.value


def test_a_guardian_registers_a_ward_and_shares_its_attributes_by_qr(
    family: ServerHarness, guardian: Guardian, bank: Party
) -> None:
    dependant = _register_dependant(guardian.client, KID)

    account = dependant.account
    assert account.state == pb.ACCOUNT_STATE_DEPENDANT
    assert account.level == pb.ACCOUNT_LEVEL_1
    assert account.guardian_account_id == guardian.account_id
    assert dependant.attributes == pb.CitizenAttributes(
        personal_id=KID.personal_id,
        full_name=KID.full_name,
        birth_date=KID.birth_date.isoformat(),
        gender=pb.GENDER_MALE,
    )
    assert dependant.take_over_date == take_over_date(KID.birth_date).isoformat()
    assert not dependant.can_take_over
    [listed] = guardian.client.list_dependants().dependants
    assert listed == dependant

    # Online: a party redeems the child's attributes through Verify.
    online = guardian.client.share_via_qr(
        attributes=["full_name", "birth_date"], dependant_account_id=account.account_id
    )
    verified = bank.client.redeem_share(online.token)
    assert verified.verified
    assert verified.attributes == pb.CitizenAttributes(
        full_name=KID.full_name, birth_date=KID.birth_date.isoformat()
    )
    # Offline: the signed credential holds the child's attributes.
    offline = guardian.client.share_via_qr(
        attributes=["full_name"], dependant_account_id=account.account_id, mode="offline"
    )
    assert bank.client.verify_offline(offline.token).full_name == KID.full_name

    # The child's history shows the redemption, made by the guardian; the
    # guardian's own history has nothing.
    history = guardian.client.list_access_history(dependant_account_id=account.account_id)
    [record] = history.records
    assert record.party_id == bank.party.id
    assert record.guardian_account_id == guardian.account_id
    assert list(guardian.client.list_access_history().records) == []
    # The audit trail: under the child, the guardian as actor.
    subject = family.in_uow(lambda r: r.accounts.subject_of(KID.personal_id))
    events = family.in_uow(lambda r: r.audit.history(subject))
    assert [(e.action, e.actor) for e in events] == [
        ("register_dependant", guardian.account_id),
        ("share_for_dependant", guardian.account_id),
        ("verify.qr_share", guardian.account_id),
        ("share_for_dependant", guardian.account_id),
    ]
    # Nothing about the child is stored in clear, its 14th birthday included.
    secrets = (KID.personal_id, KID.full_name, KID.birth_date.isoformat(), dependant.take_over_date)
    for table in inspect(family.runtime.uow.engine).get_table_names():
        dumped = repr(family.rows(f"SELECT * FROM {table}"))  # noqa: S608 (table names)
        assert not [s for s in secrets if s in dumped], table
    # Only the guardian's QR shares verify the child: it has no password, and
    # a demographic check finds no (active) account, as for anyone unknown.
    assert not bank.client.verify_password(personal_id=KID.personal_id, password=PASSWORD).verified
    claimed = bank.client.verify_demographic(KID.personal_id, full_name=KID.full_name)
    assert not claimed.verified
    no_sign_in = _refusal(
        lambda: guardian.client.sign_in(personal_id=KID.personal_id, password=PASSWORD)
    )
    assert no_sign_in.reason == "INVALID_CREDENTIALS"


def test_refusals_name_what_the_guardian_may_know(
    family: ServerHarness, guardian: Guardian, harness: ServerHarness, bank: Party
) -> None:
    not_mine = _refusal(lambda: _register_dependant(guardian.client, NEIGHBOUR))
    nobody = _person("Vô Danh", NEIGHBOUR.birth_date, Gender.FEMALE, 699999)
    unknown = _refusal(lambda: _register_dependant(guardian.client, nobody))
    assert (not_mine.code, not_mine.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "GUARDIAN_NOT_RECORDED",
    )
    assert (unknown.code, unknown.reason, str(unknown)) == (
        not_mine.code,
        not_mine.reason,
        str(not_mine),
    )

    too_old = _refusal(lambda: _register_dependant(guardian.client, TEEN))
    assert (too_old.code, too_old.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "DEPENDANT_AGE_EXCEEDED",
    )

    wrong_name = _refusal(lambda: _register_dependant(guardian.client, SISTER, full_name="Ai Đó"))
    assert wrong_name.reason == "REGISTRY_MISMATCH"

    _register_dependant(guardian.client, SISTER)
    twice = _refusal(lambda: _register_dependant(guardian.client, SISTER))
    assert (twice.code, twice.reason) == (grpc.StatusCode.ALREADY_EXISTS, "ACCOUNT_ALREADY_EXISTS")

    # Another guardian cannot act for this one's dependant.
    [sister] = guardian.client.list_dependants().dependants
    with EidClient(harness.target) as other:
        register_and_activate(family, other, OTHER_PARENT)
        other.sign_in(personal_id=OTHER_PARENT.personal_id, password=PASSWORD)
        stranger = _refusal(
            lambda: other.share_via_qr(
                attributes=["full_name"], dependant_account_id=sister.account.account_id
            )
        )
        assert (stranger.code, stranger.reason) == (
            grpc.StatusCode.NOT_FOUND,
            "DEPENDANT_NOT_FOUND",
        )

    # A guardian whose account is not ACTIVE has no session: locking ends it,
    # and the shares it made for its dependants.
    shared = guardian.client.share_via_qr(
        attributes=["full_name"], dependant_account_id=sister.account.account_id
    )
    token = guardian.client.session_token
    assert token is not None
    guardian.client.lock_account()
    assert _refusal(lambda: bank.client.redeem_share(shared.token)).reason == "SHARE_REVOKED"
    locked = _refusal(lambda: _register_dependant(guardian.client, BABY, session_token=token))
    assert (locked.code, locked.reason) == (grpc.StatusCode.UNAUTHENTICATED, "SESSION_INVALID")
    assert family.rows("SELECT count(*) FROM accounts WHERE state = 'dependant'") == [(1,)]


def test_a_guardian_lists_and_withdraws_the_shares_made_for_a_dependant(
    family: ServerHarness, guardian: Guardian, harness: ServerHarness, bank: Party
) -> None:
    kid = _register_dependant(guardian.client, SISTER).account.account_id
    made = [
        guardian.client.share_via_qr(attributes=["full_name"], dependant_account_id=kid)
        for _ in range(3)
    ]
    own = guardian.client.share_via_qr(attributes=["full_name"])

    assert [s.share_id for s in guardian.client.list_shares().shares] == [own.share_id]
    listed = guardian.client.iter_shares(page_size=2, dependant_account_id=kid)
    assert sorted(s.share_id for s in listed) == sorted(m.share_id for m in made)

    answer = guardian.client.revoke_share(made[0].share_id, dependant_account_id=kid)

    assert answer.share.state == pb.SHARE_STATE_REVOKED
    assert _refusal(lambda: bank.client.redeem_share(made[0].token)).reason == "SHARE_REVOKED"
    assert bank.client.redeem_share(made[1].token).verified
    states = {
        s.share_id: s.state for s in guardian.client.list_shares(dependant_account_id=kid).shares
    }
    assert states[made[0].share_id] == pb.SHARE_STATE_REVOKED
    # Under the child's account, as the guardian's act.
    subject = family.in_uow(lambda r: r.accounts.subject_of(SISTER.personal_id))
    events = family.in_uow(lambda r: r.audit.history(subject))
    assert [e.actor for e in events if e.action == "revoke_share"] == [guardian.account_id]
    # Only under the account a share belongs to, and only by its guardian.
    for share_id, named in ((made[1].share_id, ""), (own.share_id, kid)):
        wrong = _refusal(
            partial(guardian.client.revoke_share, share_id, dependant_account_id=named)
        )
        assert (wrong.code, wrong.reason) == (grpc.StatusCode.NOT_FOUND, "SHARE_NOT_FOUND")
    with EidClient(harness.target) as other:
        register_and_activate(family, other, OTHER_PARENT)
        other.sign_in(personal_id=OTHER_PARENT.personal_id, password=PASSWORD)
        for call in (
            lambda: other.list_shares(dependant_account_id=kid),
            lambda: other.revoke_share(made[2].share_id, dependant_account_id=kid),
        ):
            stranger = _refusal(call)
            assert (stranger.code, stranger.reason) == (
                grpc.StatusCode.NOT_FOUND,
                "DEPENDANT_NOT_FOUND",
            )
    assert bank.client.redeem_share(made[2].token).verified


def test_a_guardians_share_ends_with_the_guardians_own_lock(
    family: ServerHarness, guardian: Guardian, bank: Party
) -> None:
    """Locking the guardian's account (a lost phone) withdraws the shares
    they made for the child, also one committed just after the lock's
    withdrawal (PostgreSQL: being made as the lock committed; simulated by
    putting the withdrawn share back). Before, that share kept releasing
    the child's data (found by an attacker's pass)."""
    dependant = _register_dependant(guardian.client, KID).account.account_id
    shared = guardian.client.share_via_qr(attributes=["full_name"], dependant_account_id=dependant)
    with EidClient(family.target) as other_device:
        other_device.lock_account(personal_id=PARENT.personal_id, password=PASSWORD)
    assert _refusal(lambda: bank.client.redeem_share(shared.token)).reason == "SHARE_REVOKED"
    family.execute("UPDATE shares SET revoked_at = NULL WHERE issued_by IS NOT NULL")
    late = _refusal(lambda: bank.client.redeem_share(shared.token))
    assert (late.code, late.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "SHARE_REVOKED")


def test_dependants_are_listed_in_pages(family: ServerHarness, guardian: Guardian) -> None:
    registered = [
        _register_dependant(guardian.client, kid).account.account_id for kid in (KID, SISTER, BABY)
    ]

    first = guardian.client.list_dependants(page_size=2)
    second = guardian.client.list_dependants(page_size=2, page_token=first.next_page_token)

    assert first.next_page_token and not second.next_page_token
    shown = [d.account.account_id for d in (*first.dependants, *second.dependants)]
    assert sorted(shown) == sorted(registered) and len(set(shown)) == 3
    assert [d.account.account_id for d in guardian.client.iter_dependants(page_size=1)] == shown
    bad = _refusal(lambda: guardian.client.list_dependants(page_token="bm90IGEgdG9rZW4"))
    assert bad.reason == "PAGE_TOKEN_INVALID"


# ---- the birthday hand-over ---------------------------------------------------


@pytest.fixture
def sweeping(database_url: str) -> Iterator[ServerHarness]:
    """A server whose purge and coming-of-age sweep run every SWEEP_SECONDS."""
    harness = ServerHarness(database_url, purge_interval_seconds=SWEEP_SECONDS).start()
    _put_family(harness)
    try:
        yield harness
    finally:
        harness.stop()


def _wait_for(harness: ServerHarness, kind: NoticeKind, phone: str) -> OutgoingMessage:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for message in harness.sender.messages:
            if message.kind is kind and message.destination == phone:
                return message
        time.sleep(0.02)
    raise AssertionError(f"no {kind.value} message arrived")


def _kinds_to(harness: ServerHarness, phone: str) -> list[NoticeKind]:
    return [m.kind for m in harness.sender.messages if m.destination == phone]


def test_at_14_the_guardian_is_told_and_the_child_takes_the_account_over(
    sweeping: ServerHarness,
) -> None:
    harness = sweeping
    parent_phone = phone_of(PARENT)[1]
    kid_phone = phone_of(KID)[1]
    with EidClient(harness.target) as parent, EidClient(harness.target) as child:
        register_and_activate(harness, parent, PARENT)
        guardian = _sign_in(harness, parent, PARENT)
        dependant = _register_dependant(parent, KID).account.account_id

        # Under 14: nothing to tell, and the child cannot take the account over.
        assert harness.run(notice_coming_of_age(harness.runtime.uow, harness.runtime.context)) == 0
        assert NoticeKind.DEPENDANT_OF_AGE not in _kinds_to(harness, parent_phone)
        young = _refusal(lambda: register(child, KID))
        assert young.reason == "AGE_BELOW_MINIMUM"

        # Across the 14th birthday: the server's own sweep tells the guardian.
        harness.clock.advance(timedelta(days=4, hours=1))
        told = _wait_for(harness, NoticeKind.DEPENDANT_OF_AGE, parent_phone)
        assert "14" in told.body
        parent.sign_in(personal_id=PARENT.personal_id, password=PASSWORD)  # the session expired
        [listed] = parent.list_dependants().dependants
        assert listed.can_take_over
        # Until the child takes over, the guardian still acts for it.
        early_share = parent.share_via_qr(attributes=["full_name"], dependant_account_id=dependant)

        # The child registers with its own data and phone: the same account, PENDING.
        seen = len(harness.sender.messages)
        taken = register(child, KID)
        assert taken.account.account_id == dependant
        assert taken.account.state == pb.ACCOUNT_STATE_PENDING
        assert taken.delivery.channel == pb.DELIVERY_CHANNEL_SMS
        code = harness.wait_for_code(kid_phone, after=seen)
        _wait_for(harness, NoticeKind.DEPENDANT_TAKE_OVER_STARTED, parent_phone)
        # The guardian's shares ended with it, and the guardian can no longer share.
        with EidClient(harness.target, api_key=harness.create_party()[1]) as bank:
            revoked = _refusal(lambda: bank.redeem_share(early_share.token))
            assert revoked.reason == "SHARE_REVOKED"
        pending = _refusal(
            lambda: parent.share_via_qr(attributes=["full_name"], dependant_account_id=dependant)
        )
        assert (pending.code, pending.reason) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "DEPENDANT_TAKEN_OVER",
        )
        # A guardian's share committed just after the start revoked the rest
        # (PostgreSQL: being made as the child registered), as the race leaves it.
        harness.execute("UPDATE shares SET revoked_at = NULL WHERE issued_by IS NOT NULL")

        activated = child.activate(
            personal_id=KID.personal_id, activation_code=code, new_password=PASSWORD
        )
        assert activated.account.state == pb.ACCOUNT_STATE_ACTIVE
        assert activated.account.guardian_account_id == ""
        _wait_for(harness, NoticeKind.DEPENDANT_TAKEN_OVER, parent_phone)
        # The child's own list shows what its guardian shared for it, ended,
        # the late one too (before, it was listed ACTIVE though unredeemable).
        child.sign_in(personal_id=KID.personal_id, password=PASSWORD)
        states = {s.share_id: s.state for s in child.iter_shares()}
        assert states == {early_share.share_id: pb.SHARE_STATE_REVOKED}
        # A guardian's share committed just after the take-over revoked the
        # rest (PostgreSQL: it was being made as the child registered) has
        # ended too; before, it released the child's new phone to a party
        # for its whole life (found by an attacker's pass).
        harness.execute("UPDATE shares SET revoked_at = NULL WHERE issued_by IS NOT NULL")
        with EidClient(harness.target, api_key=harness.create_party()[1]) as bank:
            late = _refusal(lambda: bank.redeem_share(early_share.token))
            assert late.reason == "SHARE_REVOKED"

        # From now on the guardian no longer acts for it.
        assert list(parent.list_dependants().dependants) == []
        after = _refusal(
            lambda: parent.share_via_qr(attributes=["full_name"], dependant_account_id=dependant)
        )
        assert after.reason == "DEPENDANT_TAKEN_OVER"
        for acting in (
            lambda: parent.list_access_history(dependant_account_id=dependant),
            lambda: parent.list_shares(dependant_account_id=dependant),
            lambda: parent.revoke_share(early_share.share_id, dependant_account_id=dependant),
        ):
            assert _refusal(acting).reason == "DEPENDANT_TAKEN_OVER"
        # The child signs in with its own password and shares for itself.
        child.sign_in(personal_id=KID.personal_id, password=PASSWORD)
        assert child.share_via_qr(attributes=["full_name"]).token
        assert guardian.account_id not in {dependant, ""}


# Both parents are recorded in the registry for this one.
TWIN = _person("Lê Phạm Gia Huy", TODAY.replace(year=TODAY.year - 9, day=5), Gender.MALE, 610008)


def test_when_the_guardian_dies_the_other_recorded_parent_takes_the_child_on(
    family: ServerHarness, guardian: Guardian, bank: Party
) -> None:
    """A guardian's death deactivates their account and ends their shares,
    so nobody acted for the child any more, and the other parent the
    registry records for it was refused ACCOUNT_ALREADY_EXISTS: the child
    was stranded until 14 (found by an attacker's pass). The other recorded
    parent now registers the child and becomes its guardian; the dead
    guardian's shares stay ended."""
    both = demo_person(TWIN, guardians=(PARENT.personal_id, OTHER_PARENT.personal_id))
    family.run(family.runtime.uow.atomically(lambda r: r.registry.put_person(both)))
    first = _register_dependant(guardian.client, TWIN)
    child = first.account.account_id
    old_share = guardian.client.share_via_qr(attributes=["full_name"], dependant_account_id=child)

    # While the first guardian lives, the other parent is told the child has an account.
    with EidClient(family.target) as other_app:
        register_and_activate(family, other_app, OTHER_PARENT)
        other = _sign_in(family, other_app, OTHER_PARENT)
        taken = _refusal(lambda: _register_dependant(other.client, TWIN))
        assert (taken.code, taken.reason) == (
            grpc.StatusCode.ALREADY_EXISTS,
            "ACCOUNT_ALREADY_EXISTS",
        )

        family.run(
            record_death(family.runtime.uow, family.runtime.context, PARENT.personal_id, TODAY)
        )
        # The dead guardian acts for nobody: their session ended with their account.
        dead = _refusal(
            lambda: guardian.client.share_via_qr(
                attributes=["full_name"], dependant_account_id=child
            )
        )
        assert dead.code == grpc.StatusCode.UNAUTHENTICATED

        again = _register_dependant(other.client, TWIN)
        assert again.account.account_id == child  # the same account, not a second one
        assert again.account.guardian_account_id == other.account_id
        assert again.account.state == pb.ACCOUNT_STATE_DEPENDANT
        [listed] = other.client.list_dependants().dependants
        assert listed.account.account_id == child
        fresh = other.client.share_via_qr(attributes=["full_name"], dependant_account_id=child)
        verified = bank.client.redeem_share(fresh.token)
        assert verified.attributes.full_name == TWIN.full_name
        ended = _refusal(lambda: bank.client.redeem_share(old_share.token))
        assert ended.code == grpc.StatusCode.FAILED_PRECONDITION
        # Only once: the child is the new guardian's now.
        taken = _refusal(lambda: _register_dependant(other.client, TWIN))
        assert taken.reason == "ACCOUNT_ALREADY_EXISTS"
