"""Argon2id admission (use_cases/admission.py) under the flood issue 15
names: SignIns with unknown ID numbers, sent by eid-loadgen from a process
of its own faster than the hash threads can check them, against a real
server. Meanwhile health and QR Verify are answered, a relying party's
password Verify is served, and a refusal says nothing about the account."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from eid.v1 import identity_service_pb2 as pb
from eid.v1 import identity_service_pb2_grpc as pb_grpc
from eid_client.client import EidClient
from eid_client.errors import error_from_rpc_error
from eid_service.demo import demo_citizens
from eid_service.limits import Limits
from tests.integration.flows import PASSWORD, register_and_activate
from tests.integration.harness import ServerHarness

LOADGEN = Path(sys.executable).with_name("eid-loadgen")
# Valid ID numbers (Hà Nội, born in the 2000s) that name nobody.
UNKNOWN = [f"0012{n:08d}" for n in range(10_000_000, 10_020_000)]
FLOOD_RPS = 250  # over twice what the 4 hash threads check in a second here
PLACES = 8  # password checks at once: 6 for anyone, 2 kept for parties' Verify


def _refusal(stub: pb_grpc.IdentityServiceStub, personal_id: str) -> tuple[object, ...] | None:
    """The whole answer to a wrong password while the checks are full (None:
    it was admitted): status, message and the serialized details."""
    request = pb.SignInRequest(
        personal_id=personal_id, password="not the password", device_name="x"
    )
    try:
        stub.SignIn(request, timeout=10)
    except grpc.RpcError as refused:
        error = error_from_rpc_error(refused)
        if error.reason != "PASSWORD_CHECKS_BUSY":
            return None
        trailers: Any = refused.trailing_metadata()
        details = [v for k, v in trailers if k == "grpc-status-details-bin"]
        return refused.code(), refused.details(), details
    raise AssertionError("a wrong password signed in")


def test_a_sign_in_flood_cannot_starve_other_calls(
    start_server: Callable[[Limits], ServerHarness],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Shown by what is answered while every password check the flood got in
    is held mid-hash (a gate on the hasher), not by wall time: these machines
    are noisy, and `make bench` times the same flood (its flood rows)."""
    harness = start_server(Limits(max_password_checks=PLACES))
    citizen = next(c for c in demo_citizens() if c.birth_date < date(2000, 1, 1))
    _, key = harness.create_party("Bank")
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("personal_id\n" + "\n".join(UNKNOWN) + "\n", encoding="utf-8")
    with (
        EidClient(harness.target) as app,
        EidClient(harness.target, api_key=key) as bank,
        grpc.insecure_channel(harness.target) as channel,
    ):
        register_and_activate(harness, app, citizen)
        session = app.sign_in(personal_id=citizen.personal_id, password=PASSWORD).session_token
        tokens = [
            app.share_via_qr(
                attributes=["full_name"], ttl=timedelta(minutes=10), session_token=session
            ).token
            for _ in range(20)
        ]
        health = health_pb2_grpc.HealthStub(channel)
        stub = pb_grpc.IdentityServiceStub(channel)
        admission = harness.runtime.context.password_admission
        public_places = PLACES - admission.kept_for_parties

        release = threading.Event()
        compare = harness.hasher.verify

        async def held(stored_hash: str | None, password: str) -> bool:
            await asyncio.to_thread(release.wait, 30)
            return await compare(stored_hash, password)

        monkeypatch.setattr(harness.hasher, "verify", held)
        flood = subprocess.Popen(
            [
                *(str(LOADGEN), "--target", harness.target, "--json", "--timeout", "20"),
                *("--rps", str(FLOOD_RPS), "--duration", "5s"),
                *("sign-in", "--citizens", str(unknown)),
            ],
            stdout=subprocess.PIPE,
            env={**os.environ, "EID_PASSWORD": "not the password"},
        )
        try:
            give_up = time.monotonic() + 10
            while admission.admitted < public_places:
                assert time.monotonic() < give_up, "the flood never filled the hash threads"
                time.sleep(0.01)

            # Every place anyone may take is held: the next sign-in is refused
            # at once, the same refusal, to the byte, for a real account and
            # for nobody.
            theirs = _refusal(stub, citizen.personal_id)
            mine = _refusal(stub, UNKNOWN[-1])
            assert theirs is not None and theirs == mine

            # Health and QR Verify need no hash thread: all answered while
            # every check is stuck.
            for token in tokens:
                answer = health.Check(health_pb2.HealthCheckRequest(), timeout=10)
                assert answer.status == health_pb2.HealthCheckResponse.SERVING
                assert bank.redeem_share(token).verified

            # A party's Verify takes a place kept for parties (unadmitted,
            # it would have queued behind thousands of checks).
            with ThreadPoolExecutor(1) as pool:
                verifying = pool.submit(
                    bank.verify_password, personal_id=citizen.personal_id, password=PASSWORD
                )
                while admission.admitted <= public_places:
                    assert time.monotonic() < give_up + 10, "the party's Verify found no place"
                    assert not verifying.done(), verifying.result()
                    time.sleep(0.01)
                still_flooding = flood.poll() is None
                release.set()
                assert verifying.result(timeout=30).verified
        finally:
            release.set()
            output, _ = flood.communicate(timeout=60)
    report = json.loads(output)
    refused = {e["reason"]: e["count"] for e in report["errors"]}
    assert refused.get("PASSWORD_CHECKS_BUSY", 0) > 0 and refused.get("INVALID_CREDENTIALS", 0) > 0
    assert set(refused) == {"PASSWORD_CHECKS_BUSY", "INVALID_CREDENTIALS"}
    assert still_flooding, "the probes outlasted the flood"
