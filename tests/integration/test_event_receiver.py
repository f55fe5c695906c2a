"""The tests' webhook (event_receiver.py) records only whole POSTs: a sender
killed between the headers and the body (the crash runs do that) delivered
nothing, as a real webhook would see it."""

from __future__ import annotations

import socket
import time

from tests.integration.event_receiver import event_receiver


def _post(base_url: str, raw: bytes) -> None:
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as connection:
        connection.sendall(raw)
        if raw.endswith(b"}"):
            connection.recv(1024)  # the answer: the POST was handled


def test_a_post_cut_off_before_its_body_is_not_recorded_and_a_whole_one_is() -> None:
    with event_receiver() as rx:
        _post(rx.base_url, b"POST /bank HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n")
        whole = b'{"id": "evt_1"}'
        head = f"POST /bank HTTP/1.1\r\nHost: x\r\nContent-Length: {len(whole)}\r\n\r\n"
        _post(rx.base_url, head.encode() + whole)
        deadline = time.monotonic() + 5
        while not rx.posts() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)  # room for the cut-off one to be (wrongly) recorded
        assert [p.body for p in rx.posts()] == [whole]
