"""The server's log lines: text (default) or, with EID_LOG_FORMAT=json, one
JSON object per line for a log pipeline; the level from EID_LOG_LEVEL.

A record's `fields` (a dict passed as `extra={"fields": ...}`) become keys of
its JSON object. Tracebacks, whoever logs them, show frames and exception
types but never exception messages: a message may quote data (an ID number in
a ValueError, a row in a database driver's error)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s %(message)s"
# Where a scrubbed traceback travels on a record (see `traceback_fields`).
TRACEBACK = "traceback"


def configure_logging(env: Mapping[str, str] | None = None) -> None:
    """Logs to stderr as EID_LOG_FORMAT and EID_LOG_LEVEL say; a ValueError
    names a bad setting."""
    env = os.environ if env is None else env
    chosen = env.get("EID_LOG_FORMAT", "text").strip().lower() or "text"
    if chosen not in LOG_FORMATS:
        raise ValueError(f"EID_LOG_FORMAT must be text or json, not {chosen!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter(TEXT_FORMAT))
    logging.basicConfig(level=env.get("EID_LOG_LEVEL", "INFO").upper(), handlers=[handler])
    # Alembic narrates every schema check at INFO; only its problems matter here.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    threading.excepthook = thread_exception_handler


def thread_exception_handler(args: threading.ExceptHookArgs) -> None:
    """A thread's uncaught exception (a store thread's, say), scrubbed:
    Python's own hook prints the exception's message to stderr."""
    if args.exc_type is SystemExit:
        return
    name = "?" if args.thread is None else args.thread.name
    fields = {} if args.exc_value is None else traceback_fields(args.exc_value)
    logging.getLogger("eid").error(
        "thread %s ended by %s", name, args.exc_type.__name__, extra=fields
    )


def scrubbed_traceback(error: BaseException) -> str:
    """`error`'s traceback and those of the errors it was raised from or
    during: every frame (file, line, function, source line) and each
    exception's type, no message."""
    chain: list[BaseException] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    lines: list[str] = []
    for index, exc in enumerate(reversed(chain)):
        if index:
            lines.append("which led to:")
        lines.append("Traceback (most recent call last; messages withheld):")
        for frame in traceback.extract_tb(exc.__traceback__):
            lines.append(f'  File "{_short(frame.filename)}", line {frame.lineno}, in {frame.name}')
            if frame.line:
                lines.append(f"    {frame.line.strip()}")
        kind = type(exc)
        module = "" if kind.__module__ == "builtins" else f"{kind.__module__}."
        lines.append(f"{module}{kind.__qualname__}")
    return "\n".join(lines)


def traceback_fields(error: BaseException) -> dict[str, object]:
    """`extra=` for a log call that should carry `error`'s scrubbed traceback."""
    return {TRACEBACK: scrubbed_traceback(error)}


def loop_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The event loop's error reports, scrubbed. asyncio's own puts reprs in
    the line itself (a lost task's exception, a failed callback's
    arguments), where no formatter can take them out."""
    error = context.get("exception")
    if not isinstance(error, BaseException):
        loop.default_exception_handler(context)  # no exception: nothing quoted
        return
    logging.getLogger("asyncio").error(
        "event loop error: %s", type(error).__name__, extra=traceback_fields(error)
    )


def _short(filename: str) -> str:
    """A source path from its import root (site-packages, the repository)."""
    for root in sorted((p for p in sys.path if p), key=len, reverse=True):
        if filename.startswith(root.rstrip(os.sep) + os.sep):
            return filename[len(root.rstrip(os.sep)) + 1 :]
    return filename


def _record_traceback(record: logging.LogRecord) -> str | None:
    text = getattr(record, TRACEBACK, None)
    if isinstance(text, str):
        return text
    if record.exc_info and record.exc_info[1] is not None:
        return scrubbed_traceback(record.exc_info[1])
    return None


class TextFormatter(logging.Formatter):
    """The standard line, then the scrubbed traceback if the record has one."""

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        found = _record_traceback(record)
        return line if found is None else f"{line}\n{found}"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, pid, message, the
    record's `fields`, and its scrubbed traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        found = _record_traceback(record)
        if found is not None:
            line[TRACEBACK] = found
        return json.dumps(line, ensure_ascii=False, default=str)
