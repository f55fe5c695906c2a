"""Relying parties' rate limits hold across server processes: two
`eid-server serve` processes (two replicas behind a load balancer, as far as
a party can tell) on one PostgreSQL database share each party's buckets, so
calls sent to them alternately are admitted as often as one bucket allows,
not twice as often, and the refusals carry RetryInfo."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from eid.v1 import identity_service_pb2 as pb
from eid_client.errors import EidError
from eid_service.demo import demo_citizens
from tests.e2e.conftest import BIN, Deployment, Device, free_port, prepare, wait_serving

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.parametrize("database_url", ["postgresql"], indirect=True),
]


@pytest.fixture
def replicas(tmp_path: Path, database_url: str) -> Iterator[list[Deployment]]:
    """`make run`'s set-up on a fresh PostgreSQL database, then two servers
    of one worker each on their own ports."""
    env = prepare(tmp_path, EID_DATABASE_URL=database_url)
    started: list[Deployment] = []
    try:
        for _ in range(2):
            own = {**env, "EID_LISTEN": f"127.0.0.1:{free_port()}"}
            server = subprocess.Popen(
                [str(BIN / "eid-server"), "serve", "--workers", "1"],
                cwd=tmp_path,
                env=own,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            started.append(Deployment(tmp_path, own["EID_LISTEN"], own, server))
        for deployment in started:
            wait_serving(deployment)
        yield started
    finally:
        for deployment in started:
            deployment.server.send_signal(signal.SIGTERM)
        for deployment in started:
            try:
                deployment.server.wait(20)
            except subprocess.TimeoutExpired:
                deployment.server.kill()
                deployment.server.wait()


def _party(deployment: Deployment, rate: int, citizen_rate: int) -> tuple[str, str]:
    """A new party allowed the demographic mode: its id and API key."""
    out = deployment.admin(
        "party",
        "create",
        "--name",
        f"Limited {rate}/{citizen_rate}",
        "--modes",
        "demographic",
        "--rate-limit",
        str(rate),
        "--citizen-rate-limit",
        str(citizen_rate),
    )
    found = re.search(r"rp_[0-9a-f]{16}", out)
    assert found is not None, out
    return found.group(0), out.strip().splitlines()[-1]


def _claim(device: Device, api_key: str, personal_id: str) -> pb.VerifyResponse | EidError:
    request = pb.VerifyRequest(
        demographic=pb.DemographicCredential(personal_id=personal_id, full_name="Nguyễn Văn A")
    )
    answer: pb.VerifyResponse | EidError = device("Verify", request, x_api_key=api_key)
    return answer


def _alternately(
    devices: list[Device], api_key: str, personal_ids: list[str]
) -> tuple[list[int], list[EidError], float]:
    """Calls the two servers in turn; how many each admitted, the refusals,
    and the seconds the calls took (the buckets refill meanwhile)."""
    admitted = [0, 0]
    refusals: list[EidError] = []
    began = time.monotonic()
    for i, pid in enumerate(personal_ids):
        answer = _claim(devices[i % 2], api_key, pid)
        if isinstance(answer, EidError):
            refusals.append(answer)
        else:
            admitted[i % 2] += 1
    return admitted, refusals, time.monotonic() - began


def test_a_party_limit_holds_across_two_server_processes(replicas: list[Deployment]) -> None:
    devices = [Device(d.target) for d in replicas]
    try:
        party_id, api_key = _party(replicas[0], rate=6, citizen_rate=6)
        # Every call about another citizen: only the party's bucket can refuse.
        ids = [c.personal_id for c in demo_citizens()[:16]]
        admitted, refusals, took = _alternately(devices, api_key, ids)
        # One token every 10 seconds besides the burst of 6.
        assert 6 <= sum(admitted) <= 6 + int(took // 10), (admitted, took)
        assert min(admitted) >= 3  # both servers admitted calls
        assert {(e.code.name, e.reason) for e in refusals} == {
            ("RESOURCE_EXHAUSTED", "PARTY_RATE_LIMITED")
        }
        assert all(
            e.retry_delay is not None and timedelta(0) < e.retry_delay <= timedelta(seconds=10)
            for e in refusals
        )
        # An operator raises the limit; servers count by it within the party cache TTL.
        said = replicas[0].admin("party", "set-limits", party_id, "--rate-limit", "600")
        assert "600 calls a minute, 6 about one citizen" in said
        assert "600" in replicas[1].admin("party", "show", party_id)
    finally:
        for device in devices:
            device.channel.close()


def test_a_citizen_limit_holds_across_two_server_processes_and_spares_the_others(
    replicas: list[Deployment],
) -> None:
    devices = [Device(d.target) for d in replicas]
    try:
        _, api_key = _party(replicas[1], rate=120, citizen_rate=3)
        probed, other = (c.personal_id for c in demo_citizens()[:2])
        admitted, refusals, took = _alternately(devices, api_key, [probed] * 10)
        # One token every 20 seconds besides the burst of 3.
        assert 3 <= sum(admitted) <= 3 + int(took // 20), (admitted, took)
        assert {e.reason for e in refusals} == {"PARTY_CITIZEN_RATE_LIMITED"}
        assert all(e.retry_delay is not None for e in refusals)
        for device in devices:
            assert isinstance(_claim(device, api_key, other), pb.VerifyResponse)
    finally:
        for device in devices:
            device.channel.close()
