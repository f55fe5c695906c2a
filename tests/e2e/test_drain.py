"""SIGTERM, as a load balancer and the calls in flight see it: health turns
NOT_SERVING (a watcher is told and released), new calls are refused, calls in
flight finish with their own answers within the grace period (a long poll
answers before the grace runs out), the outbox dispatcher and the purge stop,
and the process exits 0 (no worker outlived its drain). Shown by answers and
exit codes, not by wall time: these machines are shared and noisy."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from eid_client.client import EidClient
from eid_client.errors import EidError
from eid_client.retry import RetryPolicy
from eid_service.demo import demo_citizens
from eid_service.supervisor import KILL_AFTER_GRACE_SECONDS
from tests.e2e.conftest import BIN
from tests.e2e.served import Served, serving_env, workdir_from

pytestmark = pytest.mark.e2e

GRACE = 4.0
SHORT_WAIT = 2.5
Status = health_pb2.HealthCheckResponse


def _timed(call: Callable[[], object]) -> tuple[EidError | None, float]:
    """The call's error (None if it succeeded) and when it ended."""
    try:
        call()
    except EidError as e:
        return e, time.monotonic()
    return None, time.monotonic()


def _party_key(workdir: Path, env: dict[str, str]) -> str:
    created = subprocess.run(
        [str(BIN / "eid-server"), "party", "create", "--name", "Drain Bank"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return created.stdout.strip().splitlines()[-1]


def test_sigterm_drains_in_flight_calls_and_refuses_new_ones(
    tmp_path: Path, prepared: Path
) -> None:
    workdir = workdir_from(prepared, tmp_path)
    env = serving_env(EID_GRACE_SECONDS=str(GRACE), TMPDIR=str(tmp_path))
    api_key = _party_key(workdir, env)
    served = Served(workdir, env)
    citizen = demo_citizens()[0].personal_id
    with (
        EidClient(served.target, api_key=api_key, retry=RetryPolicy.off()) as party,
        grpc.insecure_channel(served.target) as balancer,
        ThreadPoolExecutor(2) as pool,
    ):
        try:
            served.serving_pids(2)
            watch = health_pb2_grpc.HealthStub(balancer).Watch(
                health_pb2.HealthCheckRequest(), timeout=30
            )
            assert next(watch).status == Status.SERVING
            # Nobody decides these: each Verify waits as long as it asked.
            short, long = (party.start_approval(citizen).approval_id for _ in range(2))
            began = time.monotonic()
            polls: list[Future[tuple[EidError | None, float]]] = [
                pool.submit(_timed, lambda: party.verify_approval(short, wait=SHORT_WAIT)),
                pool.submit(_timed, lambda: party.verify_approval(long, wait=30)),
            ]
            time.sleep(0.5)
            assert not any(p.done() for p in polls)

            served.process.send_signal(signal.SIGTERM)
            assert [r.status for r in watch] == [Status.NOT_SERVING]
            assert watch.code() == grpc.StatusCode.OK  # released, not left open
            for pid in served.serving_pids(2):
                served.wait_for(rf"draining for up to 4s \(pid {pid}\)", timeout=30)
            with pytest.raises(EidError) as refused:
                party.start_approval(citizen)  # a new call on a connection in use
            assert refused.value.code == grpc.StatusCode.UNAVAILABLE
            with (
                EidClient(served.target, retry=RetryPolicy.off()) as newcomer,
                pytest.raises(EidError) as turned_away,
            ):
                newcomer.health()
            assert turned_away.value.code == grpc.StatusCode.UNAVAILABLE

            (short_error, short_end), (long_error, _) = (p.result(30) for p in polls)
            assert short_error is not None and short_error.reason == "APPROVAL_PENDING"
            assert short_end - began >= SHORT_WAIT  # its whole wait, past the SIGTERM
            # Its own answer, before the grace ran out: a call still running
            # when it does is cut off (UNAVAILABLE, no reason).
            assert long_error is not None and long_error.reason == "APPROVAL_PENDING"
            # No worker outlived its drain: the serving process kills one
            # KILL_AFTER_GRACE_SECONDS past the grace, and then exits 1. The
            # wait's timeout is a guard, not a timing (noisy machines).
            assert served.process.wait(GRACE + KILL_AFTER_GRACE_SECONDS + 20) == 0
        finally:
            served.close()
    stopped = [line for line in served.lines if "outbox dispatcher and purge ended" in line]
    assert len(stopped) == 2
    assert not [line for line in served.lines if " ERROR " in line or "Traceback" in line]
