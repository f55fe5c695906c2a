"""SIGKILL in the middle of group-committed writes: no acknowledged write is lost.

The server is killed (with its workers) while relying parties redeem QR
shares. After a restart every redemption that was answered is still there: a
retry with its request id gets the same answer, the same verification id,
rather than a second redemption. The database file is intact."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from eid.v1 import identity_service_pb2 as pb
from eid_client.client import EidClient
from eid_client.errors import EidError
from eid_service.demo import demo_citizens, portrait_capture
from eid_service.domain.citizen import age_on
from tests.e2e.conftest import BIN, Deployment, prepare, wait_serving
from tests.integration.flows import PASSWORD, phone_of

pytestmark = pytest.mark.e2e

SHARES = 240
KILL_AFTER_ANSWERS = 80


def _serve(workdir: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    # A session of its own, so one SIGKILL to the group takes the workers too.
    return subprocess.Popen(
        [str(BIN / "eid-server"), "serve", "--workers", "2"],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def test_no_acknowledged_redemption_is_lost_to_a_sigkill(tmp_path: Path) -> None:
    env = prepare(tmp_path, EID_LOG_LEVEL="WARNING")
    server = _serve(tmp_path, env)
    d = Deployment(tmp_path, env["EID_LISTEN"], env, server)
    try:
        wait_serving(d)
        # 240 redemptions of one citizen's shares in a minute: past the default
        # per-citizen limit (10 a minute), which is not what this test is about.
        created = d.admin("party", "create", "--name", "Bank", "--citizen-rate-limit", "600")
        api_key = created.strip().splitlines()[-1]
        today = datetime.now(UTC).date()
        citizen = next(c for c in demo_citizens() if age_on(c.birth_date, today) >= 18)
        with EidClient(d.target) as app:
            app.register(
                personal_id=citizen.personal_id,
                full_name=citizen.full_name,
                birth_date=citizen.birth_date,
                gender=citizen.gender.value,
                phone_number=phone_of(citizen)[0],
                portrait=portrait_capture(citizen.personal_id),
            )
            code = d.latest_code(phone_of(citizen)[1])
            app.activate(
                personal_id=citizen.personal_id, activation_code=code, new_password=PASSWORD
            )
            app.sign_in(personal_id=citizen.personal_id, password=PASSWORD)
            tokens = [
                app.share_via_qr(attributes=["full_name"], ttl=timedelta(hours=1)).token
                for _ in range(SHARES)
            ]

        answered: dict[str, pb.VerifyResponse] = {}
        lock = threading.Lock()
        killed = threading.Event()

        def redeem(i: int) -> None:
            with EidClient(d.target, api_key=api_key, timeout=10) as bank:
                try:
                    answer = bank.redeem_share(tokens[i], request_id=f"scan-{i}")
                except EidError:
                    return  # not acknowledged: no promise was made
            with lock:
                answered[f"scan-{i}"] = answer
                if len(answered) >= KILL_AFTER_ANSWERS and not killed.is_set():
                    killed.set()
                    os.killpg(server.pid, signal.SIGKILL)

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(redeem, range(SHARES)))
        assert killed.is_set(), "the server was never killed"
        server.wait(10)

        d.server = server = _serve(tmp_path, env)
        wait_serving(d)
        with EidClient(d.target, api_key=api_key, timeout=10) as bank:
            for request_id, first in answered.items():
                index = int(request_id.removeprefix("scan-"))
                assert bank.redeem_share(tokens[index], request_id=request_id) == first
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(20)
    with sqlite3.connect(tmp_path / "var" / "eid.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
