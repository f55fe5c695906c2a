"""Gender is sealed at rest (revision 0020), on each database: new accounts
and registry rows hold it only in `gender_enc` (`gender` NULL) and every
reader still gets it right; rows written before 0020 (gender in clear) read
right too until `eid-server rotate-keys` seals them; the migration keeps
such rows, and its downgrade refuses to drop genders it cannot open."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from alembic import command

from eid.v1 import identity_service_pb2 as pb
from eid_client.client import EidClient
from eid_service.cli import main
from eid_service.demo import demo_citizens
from eid_service.domain.citizen import Demographics, Gender
from eid_service.domain.registry_person import RegistryPerson
from eid_service.registry_tools.generator import generate
from eid_service.security.field_cipher import FieldCipher, blob_prefix
from eid_service.security.keyed_hash import KeyedHasher
from eid_service.security.keys import KeyRing, save_key_ring
from eid_service.store.migrate import alembic_config
from eid_service.store.protection import DataProtection
from eid_service.store.repositories.registry import seal_people
from eid_service.use_cases.context import utc_now
from tests.integration.conftest import Party
from tests.integration.flows import PASSWORD, register_and_activate
from tests.integration.harness import ServerHarness
from tests.integration.raw_sql import run_sql

GENERATED = 60
_PB_GENDER = {Gender.MALE: pb.GENDER_MALE, Gender.FEMALE: pb.GENDER_FEMALE}
_OTHER = {Gender.MALE: Gender.FEMALE, Gender.FEMALE: Gender.MALE}


def _genders(url: str, table: str) -> tuple[set[Any], int, int]:
    """The values of `gender` in `table`, its rows, and those with a gender_enc."""
    rows = run_sql(url, f"SELECT gender, gender_enc FROM {table}")  # noqa: S608 (constants)
    return {r[0] for r in rows}, len(rows), sum(r[1] is not None for r in rows)


def _protection(ring: KeyRing) -> DataProtection:
    return DataProtection(FieldCipher(ring), KeyedHasher(ring.hmac_key))


@pytest.fixture
def cli_env(harness: ServerHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`eid-server` commands on the harness's database with its keys."""
    keys = tmp_path / "keys.json"
    save_key_ring(harness.key_ring, keys)
    monkeypatch.setenv("EID_KEYS_FILE", str(keys))
    monkeypatch.setenv("EID_DATABASE_URL", harness.database_url)


def _reads_right(harness: ServerHarness, bank: Party, citizen: Demographics) -> None:
    """What a party is told of the citizen's gender: released by Verify (and
    by a share), and a demographic claim matches it, the other one not."""
    verdict = bank.client.verify_password(
        personal_id=citizen.personal_id, password=PASSWORD, requested_scopes=["basic"]
    )
    assert verdict.verified
    assert verdict.attributes.gender == _PB_GENDER[citizen.gender]
    with EidClient(harness.target) as app:
        app.sign_in(personal_id=citizen.personal_id, password=PASSWORD)
        share = app.share_via_qr(attributes=["gender"])
    assert bank.client.redeem_share(share.token).attributes.gender == _PB_GENDER[citizen.gender]
    right = bank.client.verify_demographic(
        citizen.personal_id, full_name=citizen.full_name, gender=citizen.gender.value
    )
    assert right.verified and right.demographic.gender == pb.ATTRIBUTE_MATCH_MATCH
    wrong = bank.client.verify_demographic(
        citizen.personal_id, full_name=citizen.full_name, gender=_OTHER[citizen.gender].value
    )
    assert not wrong.verified and wrong.demographic.gender == pb.ATTRIBUTE_MATCH_NO_MATCH
    found = harness.in_uow(lambda r: r.registry.find(citizen.personal_id))
    assert found == citizen


def test_new_rows_hold_gender_only_sealed_and_it_reads_back(
    harness: ServerHarness, bank: Party, citizen_app: EidClient, adult: Demographics, cli_env: None
) -> None:
    # The registry as the demo loads it (harness.add_citizens) and as the bulk
    # generate writes it (sealed by seal_people, written by put_sealed).
    assert main(["registry", "generate", "--count", str(GENERATED), "--workers", "0"]) == 0
    register_and_activate(harness, citizen_app, adult)

    url = harness.database_url
    genders, rows, sealed = _genders(url, "accounts")
    assert (genders, rows, sealed) == ({None}, 1, 1)
    genders, rows, sealed = _genders(url, "registry_citizens")
    assert genders == {None} and rows == sealed >= len(demo_citizens()) + GENERATED

    _reads_right(harness, bank, adult)
    people = generate(0, GENERATED, utc_now().date())
    found = harness.in_uow(
        lambda r: [r.registry.person(p.demographics.personal_id) for p in people]
    )
    assert [f.demographics if f else None for f in found] == [p.demographics for p in people]
    account = harness.in_uow(lambda r: r.accounts.find_by_personal_id(adult.personal_id))
    assert account is not None and account.demographics.gender == adult.gender


def _legacy_registry_row(url: str, p: DataProtection, person: RegistryPerson) -> None:
    """A registry row as written before revision 0020: gender in clear."""
    (row,) = seal_people(p, [person]).citizens
    columns = (
        "personal_id_index personal_id_enc full_name_enc birth_date_enc gender_enc kind key_id"
        " passport_index passport_enc portrait_enc fingerprints_enc"
    )
    values = dict(zip(columns.split(" "), row, strict=True))
    values.update(gender_enc=None, gender=person.demographics.gender.value)
    columns = ", ".join(values)
    run_sql(
        url,
        f"INSERT INTO registry_citizens ({columns})"  # noqa: S608 (constants)
        f" VALUES ({', '.join(':' + c for c in values)})",
        values,
    )


def _unseal_registry_row(url: str, p: DataProtection, citizen: Demographics) -> None:
    run_sql(
        url,
        "UPDATE registry_citizens SET gender = :gender, gender_enc = NULL"
        " WHERE personal_id_index = :index",
        {"gender": citizen.gender.value, "index": p.hasher.blind_index(citizen.personal_id)},
    )


def _unseal_account(url: str, p: DataProtection, citizen: Demographics) -> None:
    run_sql(
        url,
        "UPDATE accounts SET gender = :gender, gender_enc = NULL WHERE personal_id_index = :index",
        {"gender": citizen.gender.value, "index": p.hasher.blind_index(citizen.personal_id)},
    )


def _person_reads_right(harness: ServerHarness, person: RegistryPerson) -> None:
    found = harness.in_uow(lambda r: r.registry.person(person.demographics.personal_id))
    assert found is not None
    assert (found.demographics, found.kind, found.portrait) == (
        person.demographics,
        person.kind,
        person.portrait,
    )


def _due(out: str, table: str) -> int:
    found = re.search(rf"{table}\s+│\s+([\d,]+)", out)
    assert found is not None, out
    return int(found.group(1).replace(",", ""))


def test_rows_written_before_0020_read_right_and_rotate_keys_seals_them(
    harness: ServerHarness,
    bank: Party,
    citizen_app: EidClient,
    adult: Demographics,
    cli_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, p = harness.database_url, _protection(harness.key_ring)
    # The adult's registry row and account, and one more registry person, as
    # rows written before 0020 hold them. Registration checks the declared
    # gender against the legacy registry row.
    _unseal_registry_row(url, p, adult)
    (person,) = generate(7, 1, utc_now().date())
    _legacy_registry_row(url, p, person)
    register_and_activate(harness, citizen_app, adult)
    _unseal_account(url, p, adult)
    assert _genders(url, "accounts") == ({adult.gender.value}, 1, 0)
    genders, rows, sealed = _genders(url, "registry_citizens")
    assert genders - {None} == {adult.gender.value, person.demographics.gender.value}
    assert sealed == rows - 2

    _reads_right(harness, bank, adult)
    _person_reads_right(harness, person)

    capsys.readouterr()
    assert main(["rotate-keys", "--status"]) == 0
    out = capsys.readouterr().out
    assert (_due(out, "accounts"), _due(out, "registry_citizens"), _due(out, "sessions")) == (
        1,
        2,
        0,
    )
    # No new key: the values in clear are sealed, a row per transaction.
    assert main(["rotate-keys", "--resume", "--page", "1"]) == 0
    assert "every blob is under the active key" in capsys.readouterr().out

    assert _genders(url, "accounts") == ({None}, 1, 1)
    genders, rows, sealed = _genders(url, "registry_citizens")
    assert genders == {None} and sealed == rows
    prefix = blob_prefix(harness.key_ring.active_encryption_key_id)
    blobs = run_sql(
        url, "SELECT gender_enc FROM accounts UNION ALL SELECT gender_enc FROM registry_citizens"
    )
    assert all(bytes(b).startswith(prefix) for (b,) in blobs)
    assert {k for (k,) in run_sql(url, "SELECT key_id FROM registry_citizens")} == {
        harness.key_ring.active_encryption_key_id
    }
    _reads_right(harness, bank, adult)
    _person_reads_right(harness, person)
    assert main(["rotate-keys", "--status"]) == 0
    out = capsys.readouterr().out
    assert (_due(out, "accounts"), _due(out, "registry_citizens")) == (0, 0)


def _revision(url: str) -> str:
    ((version,),) = run_sql(url, "SELECT version_num FROM alembic_version")
    return str(version)


def test_the_migration_keeps_clear_rows_and_its_downgrade_will_not_lose_sealed_ones(
    database_url: str,
) -> None:
    harness = ServerHarness(database_url).start()
    ring = harness.key_ring
    citizens = demo_citizens()
    adult = next(c for c in citizens if c.personal_id == "001190791514")
    try:
        harness.add_citizens(citizens)
        with EidClient(harness.target) as app:
            register_and_activate(harness, app, adult)
            # A session (a row that refers to the account): SQLite rebuilds
            # `accounts` to change `gender`, which must keep it valid.
            app.sign_in(personal_id=adult.personal_id, password=PASSWORD, device_name="phone")
    finally:
        harness.stop()
    cfg = alembic_config(database_url)
    # The revision under test, whatever later ones add.
    command.downgrade(cfg, "0020")

    # Written since 0020: only sealed, which a downgrade cannot open.
    with pytest.raises(RuntimeError, match=r"refusing to downgrade below 0020: 1 row\(s\) of acc"):
        command.downgrade(cfg, "0019")
    assert _revision(database_url) == "0020"
    assert _genders(database_url, "accounts") == ({None}, 1, 1)

    # With every gender in clear (as before 0020) it goes down and up again.
    p = _protection(ring)
    for citizen in citizens:
        _unseal_registry_row(database_url, p, citizen)
    _unseal_account(database_url, p, adult)
    command.downgrade(cfg, "0019")
    assert _revision(database_url) == "0019"
    assert run_sql(database_url, "SELECT gender FROM accounts") == [(adult.gender.value,)]
    assert len(run_sql(database_url, "SELECT id FROM sessions")) == 1
    command.upgrade(cfg, "head")
    assert _genders(database_url, "accounts") == ({adult.gender.value}, 1, 0)
    assert len(run_sql(database_url, "SELECT id FROM sessions")) == 1

    harness = ServerHarness(database_url, key_ring=ring).start()
    try:
        _, key = harness.create_party("Ngân hàng")
        with EidClient(harness.target, api_key=key) as bank:
            verdict = bank.verify_password(
                personal_id=adult.personal_id, password=PASSWORD, requested_scopes=["basic"]
            )
            assert verdict.attributes.gender == _PB_GENDER[adult.gender]
            claim = bank.verify_demographic(
                adult.personal_id, full_name=adult.full_name, gender=adult.gender.value
            )
            assert claim.verified
        found = harness.in_uow(lambda r: r.registry.find(adult.personal_id))
        assert found == adult
    finally:
        harness.stop()
