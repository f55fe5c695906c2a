"""Level 2 at the registration office and biometric Verify, through gRPC on
SQLite and PostgreSQL: only officers with the registration role register or
upgrade; the counter's capture must reach the thresholds; the citizen
activates in the app; a party holding biometric_match verifies; everything
is audited under the officer's id; and no template is stored in clear."""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from sqlalchemy import inspect, text

from eid.v1 import identity_service_pb2 as ipb
from eid.v1 import registration_office_service_pb2 as pb
from eid.v1 import registration_office_service_pb2_grpc as pb_grpc
from eid_client.client import EidClient
from eid_client.errors import EidError, error_from_rpc_error
from eid_client.registration_office import RegistrationOfficeClient, capture_pb
from eid_client.retry import RetryPolicy
from eid_service.demo import demo_person
from eid_service.domain.biometric_match import BiometricCapture
from eid_service.domain.biometrics import Finger
from eid_service.domain.citizen import Demographics, Gender
from eid_service.domain.officer import OfficerRole
from eid_service.domain.party import MAX_RATE_PER_MINUTE, Grant, RelyingParty, new_party_id
from eid_service.domain.personal_id import make_personal_id
from eid_service.domain.registry_person import DocumentType, RegistryDocument, RegistryPerson
from eid_service.domain.share import Attribute
from eid_service.store.database import create_engine
from tests.biometric_kit import adult, at_similarity, capture_of, enrolled_person
from tests.integration.account_life_kit import messages_to
from tests.integration.flows import (
    PASSWORD,
    phone_of,
    register,
    register_and_activate,
    register_level2,
    register_level2_and_activate,
)
from tests.integration.harness import ServerHarness
from tests.polling import until

RIGHT, LEFT = Finger.RIGHT_INDEX, Finger.LEFT_INDEX
UNAUTHENTICATED, DENIED = grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED


@dataclass
class Refusal:
    code: grpc.StatusCode
    reason: str | None


@dataclass
class Office:
    harness: ServerHarness
    key: str
    officer_id: str
    client: RegistrationOfficeClient

    def person(
        self, serial: int, seed: int, documents: tuple[RegistryDocument, ...] = ()
    ) -> RegistryPerson:
        """A person the registry enrolled (portrait and ten fingerprints)."""
        person = dataclasses.replace(enrolled_person(adult(serial), seed), documents=documents)
        self.harness.run(
            self.harness.runtime.uow.atomically(lambda r: r.registry.put_person(person))
        )
        return person

    def officer(self, *roles: OfficerRole, name: str = "Officer Lý") -> tuple[str, str]:
        """Another officer: (id, key)."""
        chosen = frozenset(roles) or frozenset(OfficerRole)
        officer, key = self.harness.run(
            self.harness.runtime.uow.atomically(
                lambda r: r.officers.create(name, self.harness.clock(), chosen)
            )
        )
        return officer.id, key

    def register(self, person: RegistryPerson, capture: BiometricCapture) -> Any:
        return register_level2(self.client, person, capture)

    def upgrade(self, person: RegistryPerson, capture: BiometricCapture) -> Any:
        return self.client.upgrade_to_level2(
            personal_id=person.demographics.personal_id,
            portrait=capture.portrait.packed,
            fingerprints={f.value: t.packed for f, t in capture.fingerprints.items()},
        )


@pytest.fixture
def office(harness: ServerHarness) -> Iterator[Office]:
    officer, key = harness.run(
        harness.runtime.uow.atomically(
            lambda r: r.officers.create("Công an phường Bến Nghé, quầy 2", harness.clock())
        )
    )
    with RegistrationOfficeClient(harness.target, officer_key=key) as client:
        yield Office(harness, key, officer.id, client)


def _party(harness: ServerHarness, grants: frozenset[Grant]) -> str:
    party = RelyingParty(
        new_party_id(),
        "Counter Bank",
        frozenset(Attribute),
        rate_per_minute=MAX_RATE_PER_MINUTE,
        citizen_rate_per_minute=MAX_RATE_PER_MINUTE,
        grants=grants,
    )
    key: str = harness.run(
        harness.runtime.uow.atomically(lambda r: r.parties.create(party, harness.clock()))
    )
    return key


@pytest.fixture
def bank(harness: ServerHarness) -> Iterator[EidClient]:
    """A relying party holding the biometric_match scope."""
    key = _party(harness, frozenset({Grant.BIOMETRIC_MATCH}))
    with EidClient(harness.target, api_key=key) as client:
        yield client


def _verify(
    bank: EidClient, person: RegistryPerson, capture: BiometricCapture, finger: Finger | None = None
) -> ipb.VerifyResponse:
    fingerprint = None if finger is None else (finger.value, capture.fingerprints[finger].packed)
    return bank.verify_biometric(
        person.demographics.personal_id,
        portrait=capture.portrait.packed,
        fingerprint=fingerprint,
    )


def _refused(call: Any) -> Refusal:
    try:
        call()
    except EidError as e:
        return Refusal(e.code, e.reason)
    raise AssertionError("the call was not refused")


def _raw(harness: ServerHarness, rpc: str, request: Message, **metadata: str) -> Any:
    """A RegistrationOfficeService call with exactly this metadata."""
    with grpc.insecure_channel(harness.target) as channel:
        stub = pb_grpc.RegistrationOfficeServiceStub(channel)
        pairs = [(k.replace("_", "-"), v) for k, v in metadata.items()]
        try:
            return getattr(stub, rpc)(request, timeout=10, metadata=pairs)
        except grpc.RpcError as e:
            error = error_from_rpc_error(e)
            return Refusal(error.code, error.reason)


def _count(harness: ServerHarness, table: str) -> int:
    return int(harness.rows(f"SELECT COUNT(*) FROM {table}")[0][0])  # noqa: S608 (constants)


def test_registered_at_the_counter_activated_in_the_app_verified_by_biometrics(
    harness: ServerHarness, office: Office, bank: EidClient
) -> None:
    person = office.person(401, seed=41)
    d = person.demographics

    registered = register_level2_and_activate(
        harness, office.client, person, capture_of(person, seed=1)
    )

    assert registered.account.level == ipb.ACCOUNT_LEVEL_2
    assert registered.account.state == ipb.ACCOUNT_STATE_PENDING  # until the app activated it
    assert registered.delivery.channel == ipb.DELIVERY_CHANNEL_SMS

    verified = _verify(bank, person, capture_of(person, seed=2), finger=RIGHT)
    assert verified.verified and verified.level == ipb.ACCOUNT_LEVEL_2
    assert verified.method == ipb.VERIFICATION_METHOD_BIOMETRIC
    assert verified.biometric.match
    assert 0.95 < verified.biometric.portrait_score <= 1
    assert 0.95 < verified.biometric.fingerprint_score <= 1
    assert verified.attributes.full_name == d.full_name and verified.receipt
    assert re.fullmatch(r"sub_[a-z2-7]{32}", verified.subject)  # the pairwise subject

    with EidClient(harness.target) as app:
        app.sign_in(personal_id=d.personal_id, password=PASSWORD)
        [record] = app.list_access_history().records
    assert (record.method, record.verified) == (ipb.VERIFICATION_METHOD_BIOMETRIC, True)
    assert record.receipt == verified.receipt
    actors = harness.rows("SELECT action, outcome, actor FROM audit_events WHERE actor IS NOT NULL")
    assert actors == [("register_level2", "ok", office.officer_id)]


def test_only_an_officer_with_the_registration_role_registers(
    harness: ServerHarness, office: Office, citizen_app: EidClient
) -> None:
    person = office.person(402, seed=42)
    d = person.demographics
    request = pb.RegisterLevel2Request(
        personal_id=d.personal_id,
        full_name=d.full_name,
        birth_date=d.birth_date.isoformat(),
        gender=ipb.GENDER_FEMALE,
        phone_number=phone_of(d)[0],
        capture=capture_pb(
            capture_of(person, 3).portrait.packed,
            {f.value: t.packed for f, t in capture_of(person, 3).fingerprints.items()},
        ),
    )
    disabled_id, disabled_key = office.officer()
    harness.run(
        harness.runtime.uow.atomically(lambda r: r.officers.disable(disabled_id, harness.clock()))
    )
    _, unlock_key = office.officer(OfficerRole.UNLOCK)
    party_key = _party(harness, frozenset())
    other = office.person(403, seed=43).demographics
    register_and_activate(harness, citizen_app, other)
    session = citizen_app.sign_in(personal_id=other.personal_id, password=PASSWORD)

    answers = {
        "none": _raw(harness, "RegisterLevel2", request),
        "wrong": _raw(harness, "RegisterLevel2", request, x_officer_key="eido_not-a-real-key"),
        "disabled": _raw(harness, "RegisterLevel2", request, x_officer_key=disabled_key),
        "citizen": _raw(
            harness,
            "RegisterLevel2",
            request,
            authorization=f"Bearer {session.session_token}",
        ),
        "party": _raw(harness, "RegisterLevel2", request, x_api_key=party_key),
        "unlock only": _raw(harness, "RegisterLevel2", request, x_officer_key=unlock_key),
        "upgrade, citizen": _raw(
            harness,
            "UpgradeToLevel2",
            pb.UpgradeToLevel2Request(personal_id=other.personal_id, capture=request.capture),
            authorization=f"Bearer {session.session_token}",
        ),
    }

    assert answers == {
        "none": Refusal(UNAUTHENTICATED, "OFFICER_KEY_INVALID"),
        "wrong": Refusal(UNAUTHENTICATED, "OFFICER_KEY_INVALID"),
        "disabled": Refusal(UNAUTHENTICATED, "OFFICER_KEY_INVALID"),
        "citizen": Refusal(DENIED, "OFFICER_REQUIRED"),
        "party": Refusal(DENIED, "OFFICER_REQUIRED"),
        "unlock only": Refusal(DENIED, "OFFICER_ROLE_MISSING"),
        "upgrade, citizen": Refusal(DENIED, "OFFICER_REQUIRED"),
    }
    assert _count(harness, "accounts") == 1  # the citizen's own level-1 account
    assert _count(harness, "account_biometrics") == 0
    accepted = _raw(harness, "RegisterLevel2", request, x_officer_key=office.key)
    assert accepted.account.level == ipb.ACCOUNT_LEVEL_2


def test_the_thresholds_at_the_counter_and_in_verify(
    harness: ServerHarness, office: Office, bank: EidClient
) -> None:
    """Default thresholds 0.80: 0.795 is refused, 0.805 is enough."""
    person = office.person(404, seed=44)
    portrait = person.portrait
    assert portrait is not None

    def capture(face: float, finger: float) -> BiometricCapture:
        return BiometricCapture(
            at_similarity(portrait, face, seed=5),
            {
                RIGHT: at_similarity(person.fingerprints[RIGHT], 0.99, seed=6),
                LEFT: at_similarity(person.fingerprints[LEFT], finger, seed=7),
            },
        )

    for face, finger in ((0.795, 0.99), (0.99, 0.795)):
        refusal = _refused(lambda f=face, g=finger: office.register(person, capture(f, g)))
        assert refusal == Refusal(grpc.StatusCode.FAILED_PRECONDITION, "REGISTRY_MISMATCH")
    assert _count(harness, "accounts") == 0
    counter = capture(0.805, 0.805)
    register_level2_and_activate(harness, office.client, person, counter)

    # Verify compares with what the counter kept.
    for face, finger, verified in (
        (0.805, 0.805, True),
        (0.795, 0.99, False),
        (0.99, 0.795, False),
    ):
        probe = BiometricCapture(
            at_similarity(counter.portrait, face, seed=8),
            {LEFT: at_similarity(counter.fingerprints[LEFT], finger, seed=9)},
        )
        answer = _verify(bank, person, probe, finger=LEFT)
        assert answer.verified is verified
        if not verified:  # no score below the threshold
            assert (answer.biometric.match, answer.biometric.portrait_score) == (False, 0)
        else:
            assert 0.80 <= answer.biometric.portrait_score < 0.81


def test_a_level_1_account_is_upgraded_at_the_counter(
    harness: ServerHarness, office: Office, bank: EidClient, citizen_app: EidClient
) -> None:
    person = office.person(405, seed=45)
    d = person.demographics
    register_and_activate(harness, citizen_app, d)

    before = _refused(lambda: _verify(bank, person, capture_of(person, seed=9)))
    assert before == Refusal(grpc.StatusCode.FAILED_PRECONDITION, "LEVEL_2_REQUIRED")
    upgraded = office.upgrade(person, capture_of(person, seed=10))

    assert upgraded.account.level == ipb.ACCOUNT_LEVEL_2
    assert upgraded.account.state == ipb.ACCOUNT_STATE_ACTIVE
    # After the activation code, the phone is told.
    notices = messages_to(harness, phone_of(d)[1], at_least=2)
    assert "mức độ 2" in notices[-1]
    assert _verify(bank, person, capture_of(person, seed=11), finger=LEFT).verified
    again = _refused(lambda: office.upgrade(person, capture_of(person, seed=12)))
    assert again == Refusal(grpc.StatusCode.FAILED_PRECONDITION, "ACCOUNT_ALREADY_LEVEL_2")
    actors = harness.rows(
        "SELECT action, outcome, reason, actor FROM audit_events WHERE actor IS NOT NULL"
        " ORDER BY seq"
    )
    assert actors == [
        ("upgrade_level2", "ok", None, office.officer_id),
        ("upgrade_level2", "rejected", "ACCOUNT_ALREADY_LEVEL_2", office.officer_id),
    ]


def test_an_upgrade_that_loses_a_race_to_a_lock_says_the_account_is_locked(
    harness: ServerHarness, office: Office, citizen_app: EidClient
) -> None:
    """PostgreSQL (read committed): a lock commits while the upgrade, having
    read the account ACTIVE, waits for the row. The officer is told
    ACCOUNT_LOCKED, as a later call would be, not ABORTED (which counted the
    call, then its retry, against the officer's allowance)."""
    if not harness.database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's row locks: SQLite's one writer reads nothing stale")
    import psycopg

    person = office.person(407, seed=47)
    register_and_activate(harness, citizen_app, person.demographics)
    dsn = harness.database_url.replace("postgresql+psycopg://", "postgresql://")
    waiting = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    # Its first answer, not the SDK's retry of an ABORTED one.
    once = Office(
        harness,
        office.key,
        office.officer_id,
        RegistrationOfficeClient(harness.target, officer_key=office.key, retry=RetryPolicy.off()),
    )
    with (
        once.client,
        psycopg.connect(dsn) as locker,
        psycopg.connect(dsn, autocommit=True) as watcher,
    ):
        # What LockAccount commits, held open: the upgrade reads the committed ACTIVE.
        locker.execute("UPDATE accounts SET state = 'locked'")
        with ThreadPoolExecutor(1) as pool:
            upgrade = pool.submit(
                _refused, lambda: once.upgrade(person, capture_of(person, seed=13))
            )

            def upgrade_waits() -> bool:
                row = watcher.execute(waiting).fetchone()
                return row is not None and row[0] > 0

            assert until(upgrade_waits, 10), "the upgrade never waited for the row"
            locker.commit()
            refusal = upgrade.result(timeout=30)
    assert refusal == Refusal(grpc.StatusCode.FAILED_PRECONDITION, "ACCOUNT_LOCKED")
    assert harness.rows("SELECT level FROM accounts") == [(1,)]
    assert harness.rows(
        "SELECT outcome, reason FROM audit_events WHERE action = 'upgrade_level2'"
    ) == [("rejected", "ACCOUNT_LOCKED")]


def test_sixteen_concurrent_duplicate_upgrades_all_get_the_first_answer(
    harness: ServerHarness, office: Office, citizen_app: EidClient
) -> None:
    """One upgrade, answered alike to every copy (SDK retries off: the first
    answers themselves), whichever copy lost the race to the row."""
    person = office.person(408, seed=48)
    register_and_activate(harness, citizen_app, person.demographics)
    capture = capture_of(person, seed=14)
    with (
        RegistrationOfficeClient(
            harness.target, officer_key=office.key, retry=RetryPolicy.off()
        ) as client,
        ThreadPoolExecutor(16) as pool,
    ):

        def upgrade(_: int) -> Any:
            try:
                return client.upgrade_to_level2(
                    personal_id=person.demographics.personal_id,
                    portrait=capture.portrait.packed,
                    fingerprints={f.value: t.packed for f, t in capture.fingerprints.items()},
                    request_id="upgrade-once",
                )
            except EidError as e:
                return e.reason

        answers = list(pool.map(upgrade, range(16)))
    assert all(a == answers[0] for a in answers), answers
    assert answers[0].account.level == ipb.ACCOUNT_LEVEL_2
    assert harness.rows("SELECT outcome FROM audit_events WHERE action = 'upgrade_level2'") == [
        ("ok",)
    ]


def test_a_party_without_the_scope_is_refused_and_an_unknown_id_looks_like_a_miss(
    harness: ServerHarness, office: Office, bank: EidClient
) -> None:
    person = office.person(406, seed=46)
    register_level2_and_activate(harness, office.client, person, capture_of(person, seed=13))
    probe = capture_of(person, seed=14)
    with EidClient(harness.target, api_key=_party(harness, frozenset())) as plain:
        refused = _refused(lambda: _verify(plain, person, probe))
        asked = _refused(
            lambda: plain.verify_password(
                personal_id=person.demographics.personal_id,
                password=PASSWORD,
                requested_scopes=["biometric_match"],
            )
        )
    assert refused == asked == Refusal(DENIED, "SCOPE_NOT_ALLOWED")

    stranger = enrolled_person(adult(407), seed=47)
    miss = _verify(bank, person, capture_of(stranger, seed=15))
    unknown = _verify(bank, stranger, capture_of(stranger, seed=16))
    for answer in (miss, unknown):
        answer.ClearField("verification_id")
        answer.ClearField("verify_time")
    assert miss == unknown
    assert not miss.verified and miss.method == ipb.VERIFICATION_METHOD_BIOMETRIC
    assert miss.HasField("biometric") and not miss.biometric.match


def _citizen(name: str, born: date, gender: Gender, serial: int) -> Demographics:
    return Demographics(make_personal_id("079", born, gender, serial).value, name, born, gender)


def test_a_miss_costs_the_same_work_whoever_the_number_names(
    harness: ServerHarness, office: Office, bank: EidClient, decryptions: Callable[[], int]
) -> None:
    """A party with biometric_match cannot tell from the work a miss costs
    (statements: round trips on PostgreSQL; decryptions) whether a number has
    no account, a child's account a guardian registered, a level-1 account not
    active, or level-2 templates, locked for this mode or not (found by an
    attacker's pass: 10, 11 and 12 statements; 0, 3 and 4 decryptions)."""
    today = date.today()
    parent = _citizen("Phạm Thị Thu Trang", date(1985, 7, 12), Gender.FEMALE, 610001)
    child = _citizen("Phạm Ngọc Diệp", today.replace(year=today.year - 6, day=1), Gender.FEMALE, 2)
    pending = _citizen("Trần Văn Chờ", date(1981, 3, 3), Gender.MALE, 610098)
    locked = _citizen("Trần Văn Khoá", date(1982, 3, 3), Gender.MALE, 610097)
    family = [demo_person(parent), demo_person(child, guardians=(parent.personal_id,))]
    others = [demo_person(pending), demo_person(locked)]
    harness.run(
        harness.runtime.uow.atomically(
            lambda r: [r.registry.put_person(p) for p in [*family, *others]]
        )
    )
    with EidClient(harness.target) as app:
        register_and_activate(harness, app, parent)
        app.sign_in(personal_id=parent.personal_id, password=PASSWORD)
        app.register_dependant(
            personal_id=child.personal_id,
            full_name=child.full_name,
            birth_date=child.birth_date,
            gender=child.gender.value,
        )
    with EidClient(harness.target) as app:
        register(app, pending)
    with EidClient(harness.target) as app:
        register_and_activate(harness, app, locked)
        app.lock_account(personal_id=locked.personal_id, password=PASSWORD)
    level_2, mode_locked = office.person(408, seed=48), office.person(409, seed=49)
    for person, seed in ((level_2, 17), (mode_locked, 18)):
        register_level2_and_activate(harness, office.client, person, capture_of(person, seed))
    with EidClient(harness.target) as app:
        app.sign_in(personal_id=mode_locked.demographics.personal_id, password=PASSWORD)
        app.lock_verify_mode("biometric")

    probe = capture_of(enrolled_person(adult(410), seed=50), seed=19).portrait.packed
    numbers = {
        "nobody": "079085000001",
        "dependant": child.personal_id,
        "pending level 1": pending.personal_id,
        "locked level 1": locked.personal_id,
        "level 2": level_2.demographics.personal_id,
        "level 2, mode locked": mode_locked.demographics.personal_id,
    }

    def miss(personal_id: str) -> tuple[tuple[int, int], ipb.VerifyResponse]:
        statements, opens = harness.statements, decryptions()
        answer = bank.verify_biometric(personal_id, portrait=probe)
        cost = (harness.statements - statements, decryptions() - opens)
        answer.ClearField("verification_id")
        answer.ClearField("verify_time")
        return cost, answer

    miss(numbers["nobody"])  # warm: the party and the signing keys are cached
    seen = {kind: miss(number) for kind, number in numbers.items()}
    assert len({cost for cost, _ in seen.values()}) == 1, seen
    assert len({answer.SerializeToString() for _, answer in seen.values()}) == 1
    assert not seen["nobody"][1].verified


def _dump(harness: ServerHarness, database_url: str) -> bytes:
    """Everything the database holds: for SQLite its files as they are on
    disk, for PostgreSQL every row of every table."""
    if database_url.startswith("sqlite"):
        path = Path(database_url.split("///", 1)[1])
        files = [path, path.with_name(path.name + "-wal")]
        return b"".join(f.read_bytes() for f in files if f.exists())
    engine = create_engine(database_url)
    dump = b""
    try:
        with engine.connect() as connection:
            for table in inspect(connection).get_table_names():
                for row in connection.execute(text(f'SELECT * FROM "{table}"')):  # noqa: S608
                    for value in row:
                        raw = bytes(value) if isinstance(value, bytes | memoryview) else None
                        dump += raw if raw is not None else str(value).encode()
    finally:
        engine.dispose()
    return dump


def test_no_template_is_stored_in_clear(
    harness: ServerHarness, office: Office, database_url: str
) -> None:
    """Nor a linked document's number or issuer."""
    tax = RegistryDocument(
        DocumentType.TAX_CODE, "8040800048", "Cục Thuế Thành phố Huế", date(2016, 2, 3), None
    )
    person = office.person(408, seed=48, documents=(tax,))
    counter = capture_of(person, seed=17, fingers=list(Finger))
    office.register(person, counter)
    office.client.link_document_for_citizen(
        personal_id=person.demographics.personal_id, document_type="tax_code", number=tax.number
    )
    templates = [counter.portrait, *counter.fingerprints.values()]
    assert person.portrait is not None
    templates += [person.portrait, *person.fingerprints.values()]

    dump = _dump(harness, database_url)

    assert len(dump) > 10_000
    assert _count(harness, "account_biometrics") == _count(harness, "account_documents") == 1
    assert tax.number.encode() not in dump and tax.issuer.encode() not in dump
    for template in templates:
        packed = template.packed
        for at in range(0, len(packed) - 16, 64):
            assert packed[at : at + 16] not in dump  # four float32 values in a row
        assert base64.b64encode(packed)[:24] not in dump


def test_the_counters_requests_fit_the_default_size_limit(
    harness: ServerHarness, office: Office
) -> None:
    """Ten fingerprints and the longest fields are under 5 KiB: the 64 KiB
    that most methods take holds them with room to spare; more is refused."""
    person = office.person(409, seed=49)
    d = person.demographics
    counter = capture_of(person, seed=18, fingers=list(Finger))
    largest = pb.RegisterLevel2Request(
        request_id="r" * 64,
        personal_id=d.personal_id,
        full_name=d.full_name,
        birth_date=d.birth_date.isoformat(),
        gender=ipb.GENDER_FEMALE,
        phone_number=phone_of(d)[0],
        email="n" * 64 + "@" + "a" * 63 + "." + "b" * 63 + "." + "c" * 57 + ".vn",
        capture=capture_pb(
            counter.portrait.packed, {f.value: t.packed for f, t in counter.fingerprints.items()}
        ),
    )
    assert largest.ByteSize() < 5 * 1024
    padded = pb.RegisterLevel2Request()
    padded.CopyFrom(largest)
    padded.capture.portrait = b"\x00" * (64 * 1024)
    too_large = _raw(harness, "RegisterLevel2", padded, x_officer_key=office.key)
    assert too_large == Refusal(grpc.StatusCode.RESOURCE_EXHAUSTED, "REQUEST_TOO_LARGE")
    registered = _raw(harness, "RegisterLevel2", largest, x_officer_key=office.key)
    assert registered.account.level == ipb.ACCOUNT_LEVEL_2
