"""`eid-server rotate-keys` while `eid-server serve --workers 2` serves real
calls, on SQLite and PostgreSQL: citizens register, activate, sign in from
named devices, share by QR; a bank verifies their passwords, redeems the
shares and asks for approvals; meanwhile a new encryption key joins the key
ring and every sealed blob moves to it, page by page. No call fails, both
workers take the new ring, afterwards every blob in every table is under the
new key, `--remove-old` drops the old key (refused before), and the servers,
restarted with a ring that no longer has it, read everything: accounts,
sessions, the generated registry with its documents and templates."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from eid_client.client import EidClient
from eid_client.errors import EidError
from eid_client.retry import RetryPolicy
from eid_service.app import bootstrap
from eid_service.config import Settings
from eid_service.demo import portrait_capture, synthetic_citizens
from eid_service.domain.citizen import Demographics
from eid_service.domain.party import (
    MAX_RATE_PER_MINUTE,
    RelyingParty,
    VerifyMode,
    new_party_id,
)
from eid_service.domain.share import Attribute
from eid_service.registry_tools.generator import generate
from eid_service.security.field_cipher import blob_key_id
from eid_service.security.keys import load_key_ring
from eid_service.store.database import create_engine
from eid_service.store.repositories.sealed_blobs import SEALED_TABLES
from eid_service.use_cases.context import utc_now
from tests.e2e.conftest import BIN, free_port
from tests.e2e.served import Served

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery staple"
AS_OF = "2026-11-24"
GENERATED = 400
SYNTHETIC = 60


def _reload_of(key_id: str) -> re.Pattern[str]:
    """A worker's log line saying it took the ring whose active key is `key_id`
    (group 1: the worker's pid, as the log format prints it)."""
    return re.compile(rf" (\d+) INFO eid\.keys key ring reloaded: .*active {re.escape(key_id)}$")


def _admin(workdir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "eid-server"), *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _code(outbox: Path, phone_e164: str, after: int, timeout: float = 10) -> tuple[str, int]:
    """The code in the first SMS to this phone past line `after`, and the line count."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = outbox.read_text("utf-8").splitlines() if outbox.exists() else []
        for line in lines[after:]:
            message = json.loads(line)
            found = re.search(r"\b(\d{6})\b", message["body"])
            if message["to"] == phone_e164 and found:
                return found.group(1), len(lines)
        time.sleep(0.02)
    raise AssertionError("no activation SMS")


@dataclass
class Load:
    """Citizens' and a bank's calls, each flow counted, every failure kept."""

    target: str
    api_key: str
    outbox: Path
    citizens: list[Demographics]
    stop: threading.Event = field(default_factory=threading.Event)
    flows: int = 0
    failures: list[str] = field(default_factory=list)
    registered: list[Demographics] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, share: list[Demographics]) -> None:
        retry = RetryPolicy.off()
        with (
            EidClient(self.target, retry=retry) as app,
            EidClient(self.target, api_key=self.api_key, retry=retry) as bank,
        ):
            for i, citizen in enumerate(share):
                if self.stop.is_set():
                    return
                try:
                    self._flow(app, bank, citizen, i)
                except EidError as e:
                    with self.lock:
                        self.failures.append(f"{e.code.name} {e.reason}: {e.message}")

    def _flow(self, app: EidClient, bank: EidClient, citizen: Demographics, i: int) -> None:
        phone = f"09{int(citizen.personal_id[-8:]):08d}"
        e164 = "+849" + phone[2:]
        seen = len(self.outbox.read_text("utf-8").splitlines()) if self.outbox.exists() else 0
        app.register(
            personal_id=citizen.personal_id,
            full_name=citizen.full_name,
            birth_date=citizen.birth_date.isoformat(),
            gender=citizen.gender.value,
            phone_number=phone,
            email=f"c{i}@example.vn" if i % 2 else "",
            portrait=portrait_capture(citizen.personal_id),
        )
        code, _ = _code(self.outbox, e164, seen)
        app.activate(personal_id=citizen.personal_id, activation_code=code, new_password=PASSWORD)
        app.sign_in(personal_id=citizen.personal_id, password=PASSWORD, device_name=f"Máy {i}")
        sessions = app.list_sessions().sessions
        assert f"Máy {i}" in {s.device_name for s in sessions}
        verdict = bank.verify_password(personal_id=citizen.personal_id, password=PASSWORD)
        assert verdict.attributes.full_name == citizen.full_name
        shared = app.share_via_qr(attributes=["full_name", "birth_date"])
        redeemed = bank.redeem_share(shared.token)
        assert redeemed.attributes.birth_date == citizen.birth_date.isoformat()
        bank.start_approval(citizen.personal_id, message=f"Đăng nhập {i}")
        with self.lock:
            self.flows += 1
            self.registered.append(citizen)


async def _bank(settings: Settings) -> str:
    """A party allowed password, QR and approval Verify, well within its limits."""
    party = RelyingParty(
        new_party_id(),
        "Ngân hàng",
        frozenset(Attribute),
        modes=frozenset({VerifyMode.PASSWORD, VerifyMode.QR_SHARE, VerifyMode.APPROVAL}),
        rate_per_minute=MAX_RATE_PER_MINUTE,
        citizen_rate_per_minute=MAX_RATE_PER_MINUTE,
    )
    runtime = bootstrap(settings)
    try:
        return await runtime.uow.atomically(lambda r: r.parties.create(party, utc_now()))
    finally:
        await runtime.close()


def _blob_keys(url: str) -> dict[str, set[str]]:
    """The key ids of every blob, per table."""
    found: dict[str, set[str]] = {}
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            for spec in SEALED_TABLES:
                for column in spec.columns:
                    query = text(f"SELECT {column} FROM {spec.table} WHERE {column} IS NOT NULL")  # noqa: S608
                    for (blob,) in connection.execute(query):
                        found.setdefault(spec.table, set()).add(blob_key_id(bytes(blob)))
    finally:
        engine.dispose()
    return found


@pytest.fixture
def deployed(database_url: str, tmp_path: Path) -> tuple[Path, dict[str, str], str]:
    """Development keys and a fresh, migrated database of each kind, served
    with text logs at INFO (key ring reloads are INFO)."""
    (tmp_path / "var").mkdir()
    env = {
        **os.environ,
        "EID_LISTEN": f"127.0.0.1:{free_port()}",
        "EID_DATABASE_URL": database_url,
        "EID_KEYS_FILE": str(tmp_path / "var" / "keys.json"),
        "EID_OUTBOX_FILE": "var/outbox.log",
        "EID_CONSOLE_SENDER": "false",
        "EID_GRACE_SECONDS": "5",
        "EID_LOG_LEVEL": "INFO",
        "EID_LOG_FORMAT": "text",
        # One client address registers everyone: lift the per-source limits.
        "EID_REGISTER_PER_SOURCE_PER_HOUR": "100000",
        "EID_CODE_REQUESTS_PER_SOURCE_PER_HOUR": "100000",
    }
    made = _admin(tmp_path, env, "init-dev")
    assert made.returncode == 0, made.stdout + made.stderr
    return tmp_path, env, database_url


def test_keys_rotate_while_serving_and_the_old_key_goes(
    deployed: tuple[Path, dict[str, str], str],
) -> None:
    workdir, env, url = deployed
    keys_file = workdir / "var" / "keys.json"
    old_key = load_key_ring(keys_file).active_encryption_key_id
    loaded = _admin(workdir, env, "load-demo", "--synthetic", str(SYNTHETIC))
    assert loaded.returncode == 0, loaded.stderr
    made = _admin(
        workdir,
        env,
        *("registry", "generate", "--count", str(GENERATED), "--seed", "4", "--as-of", AS_OF),
    )
    assert made.returncode == 0, made.stdout + made.stderr
    api_key = asyncio.run(_bank(Settings.from_env(env)))
    served = Served(workdir, env, workers=2)
    try:
        served.serving_pids(2)
        citizens = synthetic_citizens(SYNTHETIC)
        load = Load(served.target, api_key, workdir / "var" / "outbox.log", citizens)
        threads = [
            threading.Thread(target=load.run, args=(citizens[k::2],), daemon=True) for k in range(2)
        ]
        for t in threads:
            t.start()
        time.sleep(1.0)
        during = load.flows
        # Small pages: dozens of transactions interleaved with the servers' own.
        rotated = _admin(workdir, env, "rotate-keys", "--page", "25", "--wait", "1.5")
        assert rotated.returncode == 0, rotated.stdout + rotated.stderr
        assert "every blob is under the active key" in rotated.stdout
        new_key = load_key_ring(keys_file).active_encryption_key_id
        assert new_key != old_key
        assert load.flows > during, "the load went on through the rotation"
        # Both workers took the new ring (each logs it once).
        reloads = served.pids(_reload_of(new_key), 2, timeout=10)
        assert len(set(reloads)) == 2
        time.sleep(0.5)
        keys = _blob_keys(url)
        assert {k for ids in keys.values() for k in ids} == {new_key}, keys
        assert {"registry_citizens", "registry_documents", "accounts", "sessions"} <= set(keys)
        assert {"approval_requests", "signing_keys", "idempotency_records"} <= set(keys)
        removed = _admin(workdir, env, "rotate-keys", "--remove-old")
        assert removed.returncode == 0, removed.stdout
        assert old_key in removed.stdout
        assert set(load_key_ring(keys_file).encryption_keys) == {new_key}
        after = load.flows
        deadline = time.monotonic() + 15
        while (
            load.flows < after + 2
            and time.monotonic() < deadline
            and any(t.is_alive() for t in threads)
        ):
            time.sleep(0.1)
        load.stop.set()
        for t in threads:
            t.join(30)
        assert load.failures == []
        assert load.flows >= after + 2 or not any(t.is_alive() for t in threads)
    finally:
        served.close()
    # A restart with the ring that no longer has the old key reads everything.
    served = Served(workdir, env, workers=1)
    try:
        served.serving_pids(1)
        with EidClient(served.target, api_key=api_key) as bank:
            for citizen in load.registered[:: max(1, len(load.registered) // 10)]:
                verdict = bank.verify_password(personal_id=citizen.personal_id, password=PASSWORD)
                assert verdict.attributes.full_name == citizen.full_name
    finally:
        served.close()
    people = generate(4, GENERATED, date.fromisoformat(AS_OF))
    settings = Settings.from_env(env)
    assert settings.database_url == url

    async def read_back() -> list[Any]:
        runtime = bootstrap(settings)
        try:
            return await runtime.uow.read(
                lambda r: [
                    (r.registry.person(pid), r.registry.documents(pid))
                    for pid in (p.demographics.personal_id for p in people[::25])
                ]
            )
        finally:
            await runtime.close()

    for person, (stored, documents) in zip(people[::25], asyncio.run(read_back()), strict=True):
        assert stored is not None
        assert stored.demographics == person.demographics
        assert (stored.portrait, stored.fingerprints) == (person.portrait, person.fingerprints)
        assert sorted(documents, key=repr) == sorted(person.documents, key=repr)
