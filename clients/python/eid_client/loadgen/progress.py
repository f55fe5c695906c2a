"""The live progress bar on stderr: calls made, their rate, and how far the run is
(by calls, or by time for a run of a fixed duration)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

# Redrawing costs a lock and a format: at thousands of calls a second, not per call.
REDRAW_SECONDS = 0.1


class ProgressView:
    """One bar: by calls when ``total`` is known, else by time out of ``duration``."""

    def __init__(self, label: str, *, total: int | None, duration: float | None) -> None:
        self._total = total
        self._duration = duration
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        bar_total = float(total) if total is not None else duration
        self._task = self._progress.add_task(label, total=bar_total, status="")

    def __enter__(self) -> ProgressView:
        self._progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._progress.stop()

    def show(self, calls: int, elapsed: float, label: str | None = None) -> None:
        """``calls`` made in ``elapsed`` seconds of measuring."""
        rate = f"  {calls / elapsed:,.0f}/s" if elapsed > 0 and calls else ""
        of = f"/{self._total:,}" if self._total is not None else ""
        done = calls if self._total is not None else min(elapsed, self._duration or elapsed)
        self._progress.update(
            self._task,
            completed=done,
            status=f"{calls:,}{of} calls{rate}",
            description=label,
        )


@contextmanager
def progress_bar(
    label: str, *, total: int | None, duration: float | None, enabled: bool
) -> Iterator[Callable[[], None]]:
    """Yields the function to call after each call; draws nothing unless ``enabled``."""
    if not enabled:
        yield lambda: None
        return
    calls = 0
    started = last = time.perf_counter()

    with ProgressView(label, total=total, duration=duration) as view:

        def advance() -> None:
            nonlocal calls, last
            calls += 1
            now = time.perf_counter()
            if now - last >= REDRAW_SECONDS or calls == total:
                last = now
                view.show(calls, now - started)

        yield advance
