"""eid_client.sandbox as an integrator uses it in their own tests: one real
eid-server process for the module, a party's API key, the demo registry,
codes read from the outbox, and a clean stop, an exception included."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from eid_client import EidError
from eid_client import _sandbox_process as sandbox_process
from eid_client.sandbox import Sandbox, SandboxError
from tests.ctrl_c import ctrl_c_restored

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    """As the sandbox's documentation tells integrators to write it."""
    with Sandbox() as sb:
        yield sb


def test_it_serves_a_party_and_the_demo_registry(sandbox: Sandbox) -> None:
    assert sandbox.running and re.fullmatch(r"127\.0\.0\.1:\d+", sandbox.target)
    assert sandbox.api_key.startswith("eidk_")
    assert re.fullmatch(r"rp_[0-9a-f]{16}", sandbox.party_id)
    assert sandbox.citizens[0].personal_id == "001190791514"
    with sandbox.client() as eid:
        assert eid.health() == "SERVING"
    assert "Sandbox Bank" in sandbox.eid_server("party", "show", sandbox.party_id)


def test_a_citizen_registers_activates_and_is_verified(sandbox: Sandbox) -> None:
    citizen = sandbox.activate_citizen(password=PASSWORD)
    with sandbox.client() as eid:
        right = eid.verify_password(personal_id=citizen.personal_id, password=PASSWORD)
        wrong = eid.verify_password(personal_id=citizen.personal_id, password="not the password")
    assert (right.verified, wrong.verified) == (True, False)
    assert [m.kind for m in sandbox.messages()][:1] == ["activation_code"]


def test_one_time_codes_are_read_from_the_outbox(sandbox: Sandbox) -> None:
    citizen = sandbox.activate_citizen(password=PASSWORD, phone="0987654321")
    with sandbox.client() as eid:
        sent = len(sandbox.messages())
        eid.request_otp(personal_id=citizen.personal_id)
        code = sandbox.latest_code("+84987654321", after=sent)
        verified = eid.verify_one_time_code(citizen.personal_id, code)
    assert verified.verified
    with pytest.raises(LookupError, match="no message"):
        sandbox.latest_code("0987654321", after=len(sandbox.messages()), timeout=0.2)


def test_errors_come_back_as_eid_errors(sandbox: Sandbox) -> None:
    stranger = sandbox.citizens[-1]
    with sandbox.client(api_key="eidk_not-a-key") as eid, pytest.raises(EidError) as caught:
        eid.verify_password(personal_id=stranger.personal_id, password=PASSWORD)
    assert (caught.value.code, caught.value.reason) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "API_KEY_INVALID",
    )


def test_a_failed_set_up_says_why_and_leaves_nothing_behind() -> None:
    broken = Sandbox(env={"EID_LANGUAGE": "klingon"})
    with pytest.raises(SandboxError, match="bad settings") as caught:
        broken.start()
    assert "EID_LANGUAGE" in str(caught.value) or "language" in str(caught.value)
    assert not broken.running and not broken.workdir.exists()


def test_a_proxy_in_the_environment_is_not_used_for_the_local_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Corporate CI sets http_proxy; gRPC then sent the sandbox's calls to the
    proxy, and the sandbox never saw its own server SERVING."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        proxy = f"http://127.0.0.1:{closed.getsockname()[1]}"  # nothing listens there
    for name in ("http_proxy", "https_proxy", "grpc_proxy"):
        monkeypatch.setenv(name, proxy)
    with Sandbox(startup_timeout=20) as sb, sb.client() as eid:
        assert eid.health() == "SERVING"


def test_a_port_taken_before_the_server_binds_it_is_replaced_by_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another process (another xdist worker's sandbox) binds the free port
    the sandbox picked before its server does: the sandbox picks another."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        real = sandbox_process.free_port
        picks = iter([port])
        monkeypatch.setattr(sandbox_process, "free_port", lambda: next(picks, None) or real())
        with Sandbox() as sb, sb.client() as eid:
            assert sb.target != f"127.0.0.1:{port}"
            assert eid.health() == "SERVING"


def test_a_start_up_too_slow_for_its_timeout_says_how_to_give_it_longer() -> None:
    """A busy CI runner: the error names the setting to raise, and nothing
    (server, folder) is left behind."""
    slow = Sandbox(startup_timeout=0.5)
    with pytest.raises(
        SandboxError, match=r"more than 0\.5 s.*Sandbox\(startup_timeout="
    ) as caught:
        slow.start()
    assert "eidk_" not in str(caught.value)  # no key in an error
    assert not slow.running and not slow.workdir.exists()


def test_sandboxes_started_at_once_are_apart() -> None:
    """pytest-xdist workers each starting one: their own port, folder, party
    and database (the same person registers in both)."""
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda _: Sandbox().start(), range(2))
    try:
        assert first.target != second.target and first.workdir != second.workdir
        person = first.activate_citizen(password=PASSWORD)
        assert second.activate_citizen(person, password=PASSWORD) == person
        with second.client(api_key=first.api_key) as eid, pytest.raises(EidError) as caught:
            eid.verify_password(personal_id=person.personal_id, password=PASSWORD)
        assert caught.value.reason == "API_KEY_INVALID"
    finally:
        first.stop()
        second.stop()


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie the init process has not reaped yet has stopped serving too.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "\tZ" in status.read_text()


# A test run at work: short waits (a signal that gRPC's threads take instead
# of the main thread interrupts no sleep, so one long sleep would hide Ctrl-C).
_BY_HAND = (
    "sb = Sandbox().start()\nprint(sb.pid, sb.workdir, flush=True)\nwhile True: time.sleep(0.1)\n"
)
_IN_A_BLOCK = (
    "with Sandbox() as sb:\n"
    "    print(sb.pid, sb.workdir, flush=True)\n"
    "    while True: time.sleep(0.1)\n"
)


_PROLOGUE = "import time\nfrom eid_client.sandbox import Sandbox\n"


def _runner(script: str) -> tuple[subprocess.Popen[str], int, Path]:
    """A test process holding a started sandbox: it, the server's pid, the folder."""
    runner = subprocess.Popen(
        # Ctrl-C raises KeyboardInterrupt, as in a terminal, however pytest runs.
        ctrl_c_restored([sys.executable, "-c", _PROLOGUE + script]),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # Ctrl-C's traceback
        text=True,
        start_new_session=True,  # its own process group, as a terminal's job is
    )
    assert runner.stdout is not None
    pid_text, folder = runner.stdout.readline().split(maxsplit=1)
    runner.stdout.close()
    server, workdir = int(pid_text), Path(folder.strip())
    assert not _gone(server) and workdir.is_dir()
    return runner, server, workdir


@pytest.mark.parametrize("script", [_BY_HAND, _IN_A_BLOCK], ids=["by-hand", "with-block"])
def test_ctrl_c_in_the_terminal_leaves_no_server_and_no_folder(script: str) -> None:
    """Ctrl-C sends SIGINT to the whole foreground job: the test process,
    the server and the watchdog."""
    runner, server, workdir = _runner(script)
    os.killpg(runner.pid, signal.SIGINT)
    runner.wait(30)
    assert _gone(server) and not workdir.exists()


@pytest.mark.parametrize("signal_number", [signal.SIGKILL, signal.SIGTERM])
def test_a_test_runner_killed_leaves_no_server_and_no_folder(signal_number: int) -> None:
    """A CI job's time limit kills pytest (SIGTERM, then SIGKILL): no atexit
    runs, yet the server stops and its folder goes."""
    runner, server, workdir = _runner(_BY_HAND)
    runner.send_signal(signal_number)
    runner.wait()
    deadline = time.monotonic() + 20
    while not (_gone(server) and not workdir.exists()) and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        assert _gone(server), "the sandbox's eid-server outlived the killed test runner"
        assert not workdir.exists(), "the killed test runner's sandbox folder was left"
    finally:
        if not _gone(server):
            os.kill(server, signal.SIGKILL)


def test_activate_citizen_hands_out_only_people_who_may_register_then_says_so(
    sandbox: Sandbox,
) -> None:
    """A session-wide sandbox whose tests each take a citizen: the demo
    registry's children (AGE_BELOW_MINIMUM) are skipped, and running out is
    said plainly. Next to last in the module: it hands out everyone left."""
    handed: list[str] = []
    said = ""
    for _ in sandbox.citizens:  # one more call than there are adults
        try:
            handed.append(sandbox.activate_citizen(password=PASSWORD).personal_id)
        except LookupError as none_left:
            said = str(none_left)
            break
    assert "citizen=" in said
    assert len(handed) >= 30 and len(set(handed)) == len(handed)
    assert not any(pid in said for pid in handed)  # no ID number in an error


def test_an_exception_in_the_block_stops_the_server_and_deletes_its_folder(
    sandbox: Sandbox,
) -> None:
    """Last in the module: it ends the module's sandbox (the fixture's own
    stop is then a no-op)."""
    pid, workdir = sandbox.pid, sandbox.workdir
    assert pid is not None and workdir.is_dir()
    with pytest.raises(RuntimeError, match="the integrator's assertion"), sandbox:
        raise RuntimeError("the integrator's assertion failed")
    assert not sandbox.running and not workdir.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
