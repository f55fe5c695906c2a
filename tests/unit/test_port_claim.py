"""One instance per port: a lock named after the port, then a bind without
SO_REUSEPORT that fails while anything listens there."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from eid_service.port_claim import PortTaken, claim_port, lock_path
from eid_service.supervisor import restart_pause


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_a_second_claim_of_a_port_is_refused_until_the_first_is_released(tmp_path: Path) -> None:
    port = _free_port()
    first = claim_port(f"127.0.0.1:{port}", tmp_path)
    with pytest.raises(PortTaken, match=f"port {port} is already served by another eid-server"):
        claim_port(f"0.0.0.0:{port}", tmp_path)
    first.release()
    assert not lock_path(port, tmp_path).exists()
    claim_port(f"127.0.0.1:{port}", tmp_path).release()


def test_a_port_anything_listens_on_is_refused(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(PortTaken, match=f"port {port} is already in use"):
            claim_port(f"127.0.0.1:{port}", tmp_path)
        assert not lock_path(port, tmp_path).exists()  # the lock went with the refusal


def test_ephemeral_ports_and_unix_sockets_are_nobodys(tmp_path: Path) -> None:
    claim_port("127.0.0.1:0", tmp_path).release()
    claim_port(f"unix:{tmp_path}/eid.sock", tmp_path).release()
    assert list(tmp_path.iterdir()) == []


def test_a_crash_loop_backs_off_to_at_most_30_s() -> None:
    pauses = [restart_pause(n) for n in range(10)]
    assert pauses[:5] == [0, 0, 0.5, 1, 2]
    assert pauses[-1] == 30 and pauses == sorted(pauses)
