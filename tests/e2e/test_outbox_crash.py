"""SIGKILL during deliveries to a real SMS gateway: nothing is lost, and
every duplicate carries the id of the message it repeats.

The server (2 workers) sends SMS to a local webhook receiver while waves of
messages arrive; it is killed with its workers mid-wave, again and again,
and restarted. A worker killed between the gateway's answer and recording
the delivery sends that message again once its claim lapses: the receiver
may see a message twice, but always under the same Idempotency-Key, so the
number of distinct keys equals the number of messages. The activation code
a citizen uses is read from what the gateway received."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from eid_client.client import EidClient
from eid_service.demo import demo_citizens, portrait_capture
from eid_service.domain.citizen import age_on
from eid_service.domain.notices import Language, NoticeKind, state_notice
from eid_service.security.field_cipher import FieldCipher
from eid_service.security.keyed_hash import KeyedHasher
from eid_service.security.keys import load_key_ring
from eid_service.store.protection import DataProtection
from eid_service.store.uow import SqlUnitOfWork
from tests.e2e.conftest import BIN, Deployment, prepare, wait_serving
from tests.integration.flows import PASSWORD, phone_of
from tests.integration.receivers import WEBHOOK_SECRET, SmsGateway, code_in, sms_gateway

pytestmark = pytest.mark.e2e

WAVE = 40


def _serve(workdir: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    # A session of its own, so one SIGKILL to the group takes the workers too.
    with (workdir / "server.log").open("ab") as log:
        return subprocess.Popen(
            [str(BIN / "eid-server"), "serve", "--workers", "2"],
            cwd=workdir,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )


def _wait(condition: object, what: str, timeout: float = 30.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def _add_wave(workdir: Path, count: int) -> list[str]:
    """Messages written by another process, as a use case would write them."""
    ring = load_key_ring(workdir / "var" / "keys.json")
    uow = SqlUnitOfWork(
        f"sqlite:///{workdir / 'var' / 'eid.db'}",
        DataProtection(FieldCipher(ring), KeyedHasher(ring.hmac_key)),
    )
    notice = state_notice(NoticeKind.ACCOUNT_LOCKED, Language.VIETNAMESE)
    now = datetime.now(UTC)

    async def add() -> list[str]:
        return await uow.atomically(
            lambda r: [r.outbox.add("sms", f"+8491{i:07d}", notice, now) for i in range(count)]
        )

    try:
        return asyncio.run(add())
    finally:
        uow.close()


def _register_and_activate(d: Deployment, gateway: SmsGateway) -> str:
    today = datetime.now(UTC).date()
    citizen = next(c for c in demo_citizens() if age_on(c.birth_date, today) >= 18)
    national, e164 = phone_of(citizen)
    with EidClient(d.target) as app:
        app.register(
            personal_id=citizen.personal_id,
            full_name=citizen.full_name,
            birth_date=citizen.birth_date,
            gender=citizen.gender.value,
            phone_number=national,
            portrait=portrait_capture(citizen.personal_id),
        )
        (hook,) = gateway.wait_for(1)
        assert hook.signature_ok and hook.payload["to"] == e164
        app.activate(
            personal_id=citizen.personal_id,
            activation_code=code_in(hook.payload["body"]),
            new_password=PASSWORD,
        )
        return hook.idempotency_key


def _crash_deliveries(tmp_path: Path, kills: int) -> None:
    gateway = SmsGateway(delay=0.03)
    with sms_gateway(gateway) as gw:
        env = prepare(
            tmp_path,
            EID_LOG_LEVEL="WARNING",
            EID_OUTBOX_FILE="",
            EID_SMS_WEBHOOK_URL=gw.url,
            EID_SMS_WEBHOOK_SECRET=WEBHOOK_SECRET,
            EID_SMS_WEBHOOK_TIMEOUT_SECONDS="1",
            # Short claims and backoff: a killed worker's deliveries come back quickly.
            EID_OUTBOX_CLAIM_SECONDS="2",
            EID_OUTBOX_RETRY_BASE_SECONDS="0.2",
            EID_OUTBOX_RETRY_MAX_SECONDS="1",
        )
        server = _serve(tmp_path, env)
        d = Deployment(tmp_path, env["EID_LISTEN"], env, server)
        try:
            wait_serving(d)
            expected = {_register_and_activate(d, gw)}
            killed = 0
            while killed < kills:
                seen = len(gw.hooks())
                expected.update(_add_wave(tmp_path, WAVE))
                _wait(lambda seen=seen: len(gw.hooks()) >= seen + WAVE // 2, "deliveries")
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(10)
                killed += 1
                d.server = server = _serve(tmp_path, env)
                wait_serving(d)
            _wait(lambda: expected <= set(gw.ids()), "every message", timeout=60)
            with sqlite3.connect(tmp_path / "var" / "eid.db") as db:
                _wait(
                    lambda: (
                        db.execute(
                            "SELECT COUNT(*) FROM outbox WHERE body_enc IS NOT NULL"
                        ).fetchone()
                        == (0,)
                    ),
                    "every message settled and erased",
                )
        finally:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(20)

    hooks = gw.hooks()
    counts = Counter(h.idempotency_key for h in hooks)
    duplicates = sum(n - 1 for n in counts.values())
    print(
        f"\n{kills} kills: {len(expected)} messages, {len(hooks)} requests,"
        f" {len(counts)} distinct ids, {duplicates} duplicates"
    )
    assert all(h.signature_ok for h in hooks)
    assert all(h.payload["id"] == h.idempotency_key for h in hooks)
    assert set(counts) == expected
    assert len(counts) == len(expected)
    with sqlite3.connect(tmp_path / "var" / "eid.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        states = db.execute(
            "SELECT state, COUNT(*) FROM outbox_deliveries GROUP BY state"
        ).fetchall()
        assert states == [("sent", len(expected))]


def test_sigkills_during_deliveries_lose_nothing_and_repeat_only_ids(tmp_path: Path) -> None:
    _crash_deliveries(tmp_path, kills=5)


@pytest.mark.soak
@pytest.mark.timeout(600)
@pytest.mark.skipif(os.environ.get("EID_SOAK") != "1", reason="long: `make soak` runs it")
def test_thirty_sigkills_during_deliveries(tmp_path: Path) -> None:
    _crash_deliveries(tmp_path, kills=30)
