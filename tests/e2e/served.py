"""`eid-server serve` as a process whose log a test reads as it comes: which
workers serve (their pids), what the supervisor did, how the drain went."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from tests.e2e.conftest import BIN, free_port

SERVING = re.compile(r"serving eid\.v1 on \S+ \(pid (\d+), (\w+) event loop\)")
STARTED = re.compile(r"worker \d+ started \(pid (\d+)\)")


def workdir_from(prepared: Path, workdir: Path) -> Path:
    """A copy of the session's `make run` set-up (keys, migrated database)."""
    shutil.copytree(prepared / "var", workdir / "var")
    return workdir


def serving_env(**settings: str) -> dict[str, str]:
    return {
        **os.environ,
        "EID_LISTEN": f"127.0.0.1:{free_port()}",
        "EID_CONSOLE_SENDER": "false",
        "EID_LOG_LEVEL": "INFO",
        "EID_LOG_FORMAT": "text",
        **settings,
    }


def gone(pid: int) -> bool:
    """Exited (a zombie waiting for its new parent to reap it counts)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text("ascii")
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] in {"Z", "X"}


class Served:
    def __init__(self, workdir: Path, env: dict[str, str], workers: int = 2) -> None:
        self.env = env
        self.target = env["EID_LISTEN"]
        self.lines: list[str] = []
        self._grown = threading.Condition()
        # A session of its own: the clean-up reaches workers the parent left behind.
        self.process = subprocess.Popen(
            [str(BIN / "eid-server"), "serve", "--workers", str(workers)],
            cwd=workdir,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._grown:
                self.lines.append(line.rstrip("\n"))
                self._grown.notify_all()
        with self._grown:
            self._grown.notify_all()

    def wait_for(self, pattern: str | re.Pattern[str], timeout: float = 30) -> re.Match[str]:
        """The first log line matching `pattern` (searched from the start)."""
        wanted = re.compile(pattern)
        give_up = time.monotonic() + timeout
        with self._grown:
            while True:
                for line in self.lines:
                    if found := wanted.search(line):
                        return found
                left = give_up - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not self._reader.is_alive()):
                    log = "\n".join(self.lines)
                    raise AssertionError(f"no log line matches {wanted.pattern!r}:\n{log}")
                self._grown.wait(min(left, 0.5))

    def serving_pids(self, count: int, timeout: float = 30) -> set[int]:
        """Once `count` workers have said they serve: their pids (all so far)."""
        return set(self.pids(SERVING, count, timeout))

    def event_loops(self, count: int, timeout: float = 30) -> list[str]:
        """Once `count` workers have said they serve: the event loop each runs on."""
        self.serving_pids(count, timeout)
        with self._grown:
            return [m.group(2) for line in self.lines if (m := SERVING.search(line))]

    def pids(self, said: re.Pattern[str], count: int, timeout: float = 30) -> list[int]:
        """Once `count` lines match `said` (its group 1 a pid): the pids, in order."""
        give_up = time.monotonic() + timeout
        while True:
            with self._grown:
                pids = [int(m.group(1)) for line in self.lines if (m := said.search(line))]
            if len(pids) >= count:
                return pids
            if time.monotonic() > give_up:
                raise AssertionError(
                    f"not {count} lines {said.pattern!r}:\n" + "\n".join(self.lines)
                )
            time.sleep(0.05)

    def close(self) -> None:
        """Whatever the test left running, the parent's whole session, ends."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # orphans, if a test failed
        self.process.wait()
        self._reader.join(5)
        if self.process.stderr is not None:
            self.process.stderr.close()
