"""Key rotation on each database: after `reencrypt_all` under a ring with a
new active key, every sealed blob of every table (registry, accounts and their
biometrics and linked documents, sessions' device names, approvals, signing keys, outbox,
idempotency records, webhooks) is under the new key, still bound to its own
row and column, and a server whose ring no longer has the old key reads all
of it. Which columns hold blobs is checked against the schema, so a new one
cannot be forgotten."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from eid_client.client import EidClient
from eid_service import cli_rotate_keys
from eid_service.cli import main
from eid_service.demo import demo_citizens, demo_foreigners, demo_person, portrait_capture
from eid_service.domain.biometric_match import BiometricCapture
from eid_service.domain.biometrics import Finger, template_of
from eid_service.domain.citizen import age_on
from eid_service.domain.linked_document import LinkedDocument
from eid_service.domain.notices import Notice, NoticeKind
from eid_service.domain.registry_person import DocumentType
from eid_service.key_rotation import due_rows, reencrypt_all
from eid_service.registry_tools.generator import generate
from eid_service.security.field_cipher import FieldCipher, blob_key_id, blob_prefix
from eid_service.security.keyed_hash import KeyedHasher
from eid_service.security.keys import (
    KeyRing,
    add_encryption_key,
    generate_key_ring,
    load_key_ring,
    replace_key_ring,
    save_key_ring,
    without_retired_encryption_keys,
)
from eid_service.store.database import create_engine
from eid_service.store.models import Base
from eid_service.store.protection import DataProtection
from eid_service.store.repositories.sealed_blobs import SEALED_TABLES, SealedTable
from eid_service.store.uow import SqlUnitOfWork
from eid_service.use_cases.context import utc_now
from eid_service.use_cases.ports import Repositories
from tests.ctrl_c import ctrl_c_restored
from tests.integration.flows import PASSWORD, phone_of, register_and_activate
from tests.integration.harness import ServerHarness
from tests.integration.test_register_level1 import register_foreigner
from tests.polling import until

TODAY = date(2026, 11, 24)
DEVICE = "Điện thoại của Lan"
APPROVAL_NOTE = "Đăng nhập Ngân hàng Thử nghiệm"
WEBHOOK = "https://bank.example/eid/events?token=s3cret"


def test_every_sealed_column_of_the_schema_is_rotated() -> None:
    in_schema = {
        (table.name, column.name)
        for table in Base.metadata.tables.values()
        for column in table.columns
        if column.name.endswith("_enc")
    }
    rotated = {(spec.table, column) for spec in SEALED_TABLES for column in spec.columns}
    assert rotated == in_schema


def _uow(url: str, ring: KeyRing) -> SqlUnitOfWork:
    return SqlUnitOfWork(url, DataProtection(FieldCipher(ring), KeyedHasher(ring.hmac_key)))


def _blobs(url: str) -> dict[tuple[str, str], list[tuple[tuple[Any, ...], bytes]]]:
    """Every non-NULL blob: (table, column) -> [(row key, blob)]."""
    found: dict[tuple[str, str], list[tuple[tuple[Any, ...], bytes]]] = {}
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            for spec in SEALED_TABLES:
                keys = ", ".join(spec.key)
                query = text(f"SELECT {keys}, {', '.join(spec.columns)} FROM {spec.table}")  # noqa: S608
                for row in connection.execute(query):
                    key = tuple(_plain(v) for v in row[: len(spec.key)])
                    for column, blob in zip(spec.columns, row[len(spec.key) :], strict=True):
                        if blob is not None:
                            found.setdefault((spec.table, column), []).append((key, bytes(blob)))
    finally:
        engine.dispose()
    return found


def _plain(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview) else value


def _key_ids(url: str, table: str) -> set[str | None]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(f"SELECT key_id FROM {table}"))  # noqa: S608
            return {r[0] for r in rows}
    finally:
        engine.dispose()


def _spec(table: str) -> SealedTable:
    return next(s for s in SEALED_TABLES if s.table == table)


@pytest.fixture
def populated(database_url: str) -> tuple[str, KeyRing, dict[str, Any]]:
    """A database where every sealed column holds a blob, written through the
    API and the repositories under `ring`."""
    ring = generate_key_ring()
    harness = ServerHarness(database_url, key_ring=ring).start()
    facts: dict[str, Any] = {}
    try:
        citizens = demo_citizens()
        harness.add_citizens(citizens)
        people = generate(3, 80, TODAY)
        harness.add_people(people)
        facts["people"] = people
        adult = next(c for c in citizens if age_on(c.birth_date, TODAY) >= 18)
        facts["adult"] = adult
        _, api_key = harness.create_party("Ngân hàng Thử nghiệm")
        facts["api_key"] = api_key
        with EidClient(harness.target) as app, EidClient(harness.target, api_key=api_key) as bank:
            seen = len(harness.sender.messages)
            app.register(
                personal_id=adult.personal_id,
                full_name=adult.full_name,
                birth_date=adult.birth_date.isoformat(),
                gender=adult.gender.value,
                phone_number=phone_of(adult)[0],
                email="lan@example.vn",
                portrait=portrait_capture(adult.personal_id),
                request_id="register-1",
            )
            code = harness.wait_for_code(phone_of(adult)[1], after=seen)
            app.activate(personal_id=adult.personal_id, activation_code=code, new_password=PASSWORD)
            app.sign_in(personal_id=adult.personal_id, password=PASSWORD, device_name=DEVICE)
            bank.start_approval(adult.personal_id, message=APPROVAL_NOTE)
            bank.set_status_webhook(WEBHOOK)
            verdict = bank.verify_password(
                personal_id=adult.personal_id, password=PASSWORD, request_id="verify-1"
            )
            facts["verified_name"] = verdict.attributes.full_name
        other = next(c for c in citizens[1:] if age_on(c.birth_date, TODAY) >= 18)
        foreigner = demo_foreigners()[0]
        harness.add_people([foreigner])
        with EidClient(harness.target) as app:
            register_and_activate(harness, app, other)
            register_foreigner(app, foreigner)  # an account with a nationality
        account = harness.in_uow(lambda r: r.accounts.find_by_personal_id(adult.personal_id))
        assert account is not None
        account_id = account.id
        facts["account_id"] = account_id
        capture = BiometricCapture(
            template_of([((i * 7) % 5) - 2.0 for i in range(128)]),
            {Finger.RIGHT_INDEX: template_of([float(i % 3 + 1) for i in range(64)])},
        )
        facts["capture"] = capture
        harness.run(
            harness.runtime.uow.atomically(
                lambda r: r.biometrics.enrol(account_id, capture, harness.clock())
            )
        )
        linked = LinkedDocument(
            DocumentType.TAX_CODE,
            "8012345678",
            "Cục Thuế Thành phố Hà Nội",
            date(2020, 1, 2),
            None,
            harness.clock(),
            "off_officer",
        )
        facts["linked"] = linked
        harness.run(
            harness.runtime.uow.atomically(lambda r: r.account_documents.add(account_id, linked))
        )
        dead = people[0].demographics.personal_id
        harness.run(harness.runtime.uow.atomically(lambda r: r.registry.mark_deceased(dead, TODAY)))
    finally:
        harness.stop()
    # A message still to be sent (the running dispatcher erased the others' contents).
    uow = _uow(database_url, ring)
    try:
        notice = Notice(NoticeKind.ACTIVATION_CODE, "Mã kích hoạt", "Mã của bạn là 123456")
        asyncio.run(
            uow.atomically(lambda r: r.outbox.add("sms", "+84912345678", notice, harness.clock()))
        )
    finally:
        uow.close()
    return database_url, ring, facts


def test_rotation_moves_every_blob_and_the_old_key_can_go(
    populated: tuple[str, KeyRing, dict[str, Any]],
) -> None:
    url, old_ring, facts = populated
    before = _blobs(url)
    expected = {(spec.table, column) for spec in SEALED_TABLES for column in spec.columns}
    assert set(before) == expected, f"no blob in {sorted(expected - set(before))}"
    old_key = old_ring.active_encryption_key_id
    assert all(blob_key_id(b) == old_key for blobs in before.values() for _, b in blobs)

    ring = add_encryption_key(old_ring)
    uow = _uow(url, ring)
    try:
        # Small pages: many transactions per table, as beside a busy server.
        done = asyncio.run(reencrypt_all(uow, page=7))
        assert done.done and done.unreadable == {}
        assert sum(done.blobs.values()) == sum(len(b) for b in before.values())
        again = asyncio.run(reencrypt_all(uow, page=7))
        assert sum(again.blobs.values()) == sum(again.rows.values()) == 0
    finally:
        uow.close()

    after = _blobs(url)
    new_key = ring.active_encryption_key_id
    prefix = blob_prefix(new_key)
    for place, blobs in after.items():
        assert len(blobs) == len(before[place]), place
        assert all(b.startswith(prefix) for _, b in blobs), place
        assert not {b for _, b in blobs} & {b for _, b in before[place]}, place
    for table in (
        "registry_citizens",
        "registry_documents",
        "account_biometrics",
        "account_documents",
    ):
        assert _key_ids(url, table) == {new_key}

    # Each blob opens with the new key alone, in its own row and column only.
    only_new = without_retired_encryption_keys(ring)
    cipher = FieldCipher(only_new)
    for (table, column), blobs in after.items():
        spec = _spec(table)
        for key, blob in blobs:
            cipher.decrypt_bytes(blob, context=spec.context(key, column))

    # A server whose ring has lost the old key serves everything.
    adult = facts["adult"]
    harness = ServerHarness(url, key_ring=only_new).start()
    try:
        with (
            EidClient(harness.target) as app,
            EidClient(harness.target, api_key=facts["api_key"]) as bank,
        ):
            app.sign_in(personal_id=adult.personal_id, password=PASSWORD, device_name="laptop")
            devices = {s.device_name for s in app.list_sessions().sessions}
            assert DEVICE in devices
            verdict = bank.verify_password(
                personal_id=adult.personal_id, password=PASSWORD, request_id="verify-1"
            )
            assert verdict.verified
            assert verdict.attributes.full_name == facts["verified_name"] == adult.full_name
            hook = bank.status_webhook()
            assert hook is not None and hook.url == WEBHOOK

        def read(r: Repositories) -> tuple[Any, ...]:
            people = facts["people"]
            living = people[1]
            return (
                r.registry.person(living.demographics.personal_id),
                r.registry.documents(
                    next(p for p in people if p.documents).demographics.personal_id
                ),
                r.registry.person(demo_citizens()[0].personal_id),
                r.biometrics.of_account(facts["account_id"]),
                r.accounts.find_by_personal_id(adult.personal_id),
                r.account_documents.of_account(facts["account_id"]),
            )

        living, documents, demo, capture, account, linked = harness.in_uow(read)
        person = facts["people"][1]
        assert living.demographics == person.demographics
        assert living.portrait == person.portrait
        issued = next(p for p in facts["people"] if p.documents).documents
        assert sorted(documents, key=repr) == sorted(issued, key=repr)
        assert demo == demo_person(demo_citizens()[0])
        assert capture == facts["capture"]
        assert account.email == "lan@example.vn"
        assert linked == [facts["linked"]]
    finally:
        harness.stop()


def test_the_command_resumes_and_refuses_to_drop_a_key_still_needed(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    keys_file = tmp_path / "keys.json"
    ring = generate_key_ring()
    save_key_ring(ring, keys_file)
    monkeypatch.setenv("EID_KEYS_FILE", str(keys_file))
    monkeypatch.setenv("EID_DATABASE_URL", database_url)
    assert main(["registry", "generate", "--count", "120", "--workers", "0"]) == 0
    # A rotation stopped right after the new key joined the ring.
    replace_key_ring(add_encryption_key(ring), keys_file)
    capsys.readouterr()

    assert main(["rotate-keys", "--remove-old"]) == 1
    out = capsys.readouterr().out
    assert "refused" in out and "registry_citizens" in out
    assert len(load_key_ring(keys_file).encryption_keys) == 2

    assert main(["rotate-keys", "--status"]) == 0
    assert re.search(r"registry_citizens\s+│\s+120", capsys.readouterr().out)

    assert main(["rotate-keys", "--resume", "--page", "10"]) == 0
    out = capsys.readouterr().out
    assert "every blob is under the active key" in out
    assert main(["rotate-keys", "--remove-old"]) == 0
    assert ring.active_encryption_key_id in capsys.readouterr().out
    left = load_key_ring(keys_file)
    assert ring.active_encryption_key_id not in left.encryption_keys

    # A whole rotation: a key added, everything moved, nothing left due.
    assert main(["rotate-keys", "--wait", "0"]) == 0
    assert "every blob is under the active key" in capsys.readouterr().out
    latest = load_key_ring(keys_file)
    assert latest.active_encryption_key_id != left.active_encryption_key_id
    assert main(["rotate-keys", "--remove-old"]) == 0
    assert set(load_key_ring(keys_file).encryption_keys) == {latest.active_encryption_key_id}
    uow = _uow(database_url, load_key_ring(keys_file))
    try:
        people = generate(0, 120, utc_now().date())
        found = asyncio.run(
            uow.read(lambda r: [r.registry.person(p.demographics.personal_id) for p in people])
        )
        assert [f.demographics if f else None for f in found] == [p.demographics for p in people]
    finally:
        uow.close()


def test_a_rotation_run_while_another_changes_the_ring_never_loses_a_key(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--remove-old` read the ring, counted what was due and wrote the ring
    back; a `rotate-keys` in another process in between added a key and
    sealed every blob under it, and the write dropped that key: nothing
    decrypted any more. Now the second run is refused while the first holds
    the ring."""
    keys_file = tmp_path / "keys.json"
    save_key_ring(generate_key_ring(), keys_file)
    monkeypatch.setenv("EID_KEYS_FILE", str(keys_file))
    monkeypatch.setenv("EID_DATABASE_URL", database_url)
    assert main(["registry", "generate", "--count", "60", "--workers", "0"]) == 0
    assert main(["rotate-keys", "--wait", "0"]) == 0  # an older key, no longer needed
    counting = due_rows
    other: list[subprocess.CompletedProcess[str]] = []

    async def counted_then_another_run(uow: SqlUnitOfWork) -> dict[str, int]:
        due = await counting(uow)
        if not other:
            command = [str(Path(sys.executable).with_name("eid-server")), "rotate-keys"]
            run = [*command, "--wait", "0"]
            other.append(
                await asyncio.to_thread(
                    subprocess.run, run, capture_output=True, text=True, timeout=120
                )
            )
        return due

    monkeypatch.setattr(cli_rotate_keys, "due_rows", counted_then_another_run)
    assert main(["rotate-keys", "--remove-old"]) == 0
    (concurrent,) = other
    assert "Traceback" not in concurrent.stdout + concurrent.stderr
    if concurrent.returncode != 0:
        assert "another `eid-server rotate-keys` is changing the key ring" in concurrent.stdout
    ring = load_key_ring(keys_file)
    uow = _uow(database_url, ring)
    try:
        people = generate(0, 60, utc_now().date())
        found = asyncio.run(
            uow.read(lambda r: [r.registry.person(p.demographics.personal_id) for p in people])
        )
        assert [f.demographics if f else None for f in found] == [p.demographics for p in people]
    finally:
        uow.close()


def test_a_rotation_stopped_with_ctrl_c_says_what_to_do_and_resume_finishes_it(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Ctrl-C mid-rotation (a real process, SIGINT once some rows are under
    the new key) ended in asyncio's KeyboardInterrupt traceback; now exit
    status 130 and one line saying what to do, and --resume finishes."""
    keys_file = tmp_path / "keys.json"
    save_key_ring(generate_key_ring(), keys_file)
    monkeypatch.setenv("EID_KEYS_FILE", str(keys_file))
    monkeypatch.setenv("EID_DATABASE_URL", database_url)
    assert main(["registry", "generate", "--count", "5000", "--workers", "0"]) == 0
    command = [str(Path(sys.executable).with_name("eid-server")), "rotate-keys"]
    with subprocess.Popen(
        ctrl_c_restored([*command, "--wait", "0", "--page", "2"]),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as rotating:
        if not until(lambda: len(_key_ids(database_url, "registry_citizens")) > 1, 60):
            rotating.kill()
            pytest.fail(f"no row moved in 60 s: {rotating.communicate(timeout=60)[0]}")
        rotating.send_signal(signal.SIGINT)
        output, _ = rotating.communicate(timeout=60)
    assert rotating.returncode == 130, output
    assert "Traceback" not in output
    assert "interrupted: what moved so far stays; `eid-server rotate-keys --resume`" in output
    assert len(_key_ids(database_url, "registry_citizens")) == 2, "stopped before its end"
    capsys.readouterr()
    assert main(["rotate-keys", "--resume"]) == 0
    assert "every blob is under the active key" in capsys.readouterr().out
    ring = load_key_ring(keys_file)
    assert _key_ids(database_url, "registry_citizens") == {ring.active_encryption_key_id}
