"""A raw HTTP/2 client that speaks just enough of the protocol (RFC 9113) to
misbehave as an attacker does: streams opened and never finished, pings
sent too often, a server's pings never answered. Frames are built by hand;
header blocks use HPACK literals without Huffman coding (RFC 7541, 6.2.2),
and the server's header blocks are never decoded (frames and flags suffice)."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY = 0x0, 0x1, 0x3, 0x4, 0x6, 0x7
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
REFUSED_STREAM, ENHANCE_YOUR_CALM = 0x7, 0xB


@dataclass(frozen=True)
class Frame:
    kind: int
    flags: int
    stream: int
    payload: bytes

    @property
    def error_code(self) -> int:
        """RST_STREAM's code, or GOAWAY's (after the last stream id)."""
        offset = 4 if self.kind == GOAWAY else 0
        code: int = struct.unpack(">I", self.payload[offset : offset + 4])[0]
        return code

    def settings(self) -> dict[int, int]:
        pairs = (self.payload[i : i + 6] for i in range(0, len(self.payload), 6))
        return dict(struct.unpack(">HI", pair) for pair in pairs)


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    header = struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream)
    return header + payload


def split_frames(data: bytes) -> tuple[list[Frame], bytes]:
    """The whole frames `data` begins with, and the bytes after them."""
    frames = []
    while len(data) >= 9:
        length = int.from_bytes(data[:3], "big")
        if len(data) < 9 + length:
            break
        stream = int.from_bytes(data[5:9], "big") & 0x7FFFFFFF
        frames.append(Frame(data[3], data[4], stream, data[9 : 9 + length]))
        data = data[9 + length :]
    return frames, data


def _literal(name: bytes, value: bytes) -> bytes:
    assert len(name) < 127 and len(value) < 127  # one-byte lengths
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


class RawConnection:
    """One TCP connection to a gRPC server. `answer_pings=False` makes it a
    peer that has gone without a word (its socket open, nothing answered)."""

    def __init__(self, target: str, *, answer_pings: bool = True) -> None:
        host, port = target.rsplit(":", 1)
        self.authority = target.encode()
        self.answer_pings = answer_pings
        self.sock = socket.create_connection((host, int(port)), timeout=5)
        self.closed = False
        self.received: list[Frame] = []
        self.arrived: list[float] = []  # when each received frame was read (monotonic)
        self._buffer = b""
        self._next_stream = 1
        self.send(PREFACE + frame(SETTINGS, 0, 0))

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def handshake(self) -> dict[int, int]:
        """Waits for the server's SETTINGS (acknowledged); returns them."""
        first = self.wait_for(lambda f: f.kind == SETTINGS and not f.flags & ACK)
        assert first is not None, "the server sent no SETTINGS"
        return first.settings()

    def open_streams(self, count: int, path: str) -> list[int]:
        """Opens `count` gRPC calls to `path`: headers sent, never a message
        nor the end of the stream (half-open). Returns their stream ids."""
        block = b"".join(
            _literal(name, value)
            for name, value in (
                (b":method", b"POST"),
                (b":scheme", b"http"),
                (b":path", path.encode()),
                (b":authority", self.authority),
                (b"content-type", b"application/grpc"),
                (b"te", b"trailers"),
            )
        )
        ids = list(range(self._next_stream, self._next_stream + 2 * count, 2))
        self._next_stream += 2 * count
        self.send(b"".join(frame(HEADERS, END_HEADERS, i, block) for i in ids))
        return ids

    def ping(self, count: int = 1) -> None:
        self.send(b"".join(frame(PING, 0, 0, struct.pack(">Q", n)) for n in range(count)))

    def read(self, timeout: float, *, first: bool = False) -> list[Frame]:
        """Frames received within `timeout` (answering SETTINGS, and PINGs
        if it answers them); stops early once the server closes, or, with
        `first`, once some arrived."""
        give_up = time.monotonic() + timeout
        new: list[Frame] = []
        while not self.closed and time.monotonic() < give_up and not (first and new):
            self.sock.settimeout(max(0.01, give_up - time.monotonic()))
            try:
                new.extend(self._take())
            except TimeoutError:
                break
        return new

    def read_waiting(self) -> list[Frame]:
        """The frames that have arrived, without waiting for more."""
        new: list[Frame] = []
        self.sock.settimeout(0)
        try:
            while not self.closed:
                new.extend(self._take())
        except BlockingIOError:
            pass
        return new

    def _take(self) -> list[Frame]:
        """Receives a chunk; keeps (stamped) and returns the frames it completes."""
        try:
            chunk = self.sock.recv(65536)
        except ConnectionError:
            chunk = b""
        if not chunk:
            self.closed = True
            return []
        self._buffer += chunk
        new = self._parse()
        # Stamps first: another thread pairing the two lists never finds a
        # frame without its time.
        self.arrived.extend([time.monotonic()] * len(new))
        self.received.extend(new)
        return new

    def wait_for(self, wanted: Callable[[Frame], bool], timeout: float = 5.0) -> Frame | None:
        """The first frame, already received or to come, for which `wanted` is true."""
        for seen in self.received:
            if wanted(seen):
                return seen
        give_up = time.monotonic() + timeout
        while not self.closed and time.monotonic() < give_up:
            for got in self.read(give_up - time.monotonic(), first=True):
                if wanted(got):
                    return got
        return None

    def _parse(self) -> list[Frame]:
        frames, self._buffer = split_frames(self._buffer)
        for got in frames:
            if got.kind == SETTINGS and not got.flags & ACK:
                self.send(frame(SETTINGS, ACK, 0))
            if got.kind == PING and not got.flags & ACK and self.answer_pings:
                self.send(frame(PING, ACK, 0, got.payload))
        return frames

    def ended_streams(self, *, read_by: float = float("inf")) -> dict[int, str]:
        """Each stream the server has ended (in what was read by monotonic
        time `read_by`): "refused" (RST_STREAM REFUSED_STREAM), "reset"
        (another RST_STREAM) or "answered" (a header block that ends the
        stream: a status)."""
        ended: dict[int, str] = {}
        for f, arrived in zip(self.received, self.arrived, strict=False):
            if arrived > read_by:
                break
            if f.kind == RST_STREAM:
                refused = f.error_code == REFUSED_STREAM
                ended.setdefault(f.stream, "refused" if refused else "reset")
            elif f.kind == HEADERS and f.flags & END_STREAM:
                ended.setdefault(f.stream, "answered")
        return ended
