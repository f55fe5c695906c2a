"""A relying party's webhook, run by the tests: a stdlib HTTP server that
records every whole POST (path, headers, exact body bytes) and answers each
with the next scripted status (200 once the script runs out)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Post:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class EventReceiver:
    script: list[int] = field(default_factory=list)
    received: list[Post] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    base_url: str = ""

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def answer(self, post: Post) -> int:
        with self.lock:
            self.received.append(post)
            return self.script.pop(0) if self.script else 200

    def posts(self, path: str | None = None) -> list[Post]:
        with self.lock:
            return [p for p in self.received if path is None or p.path == path]

    def wait_for(self, count: int, path: str | None = None, timeout: float = 20.0) -> list[Post]:
        """At least `count` POSTs (to `path`): polls, then fails loudly."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            posts = self.posts(path)
            if len(posts) >= count:
                return posts
            time.sleep(0.02)
        raise AssertionError(f"the webhook got {len(self.posts(path))} POSTs, not {count}")


@contextmanager
def event_receiver(receiver: EventReceiver | None = None) -> Iterator[EventReceiver]:
    rx = receiver or EventReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if len(body) < length:
                # Cut off mid-request (the sender was killed between the
                # headers and the body): never received, as any server would.
                self.send_response(400)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = rx.answer(Post(self.path, dict(self.headers.items()), body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    rx.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield rx
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
