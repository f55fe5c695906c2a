"""The server's log lines: text (default) or, with EID_LOG_FORMAT=json, one
JSON object per line for a log pipeline; the level from EID_LOG_LEVEL.

A record's `fields` (a dict passed as `extra={"fields": ...}`) become keys of
its JSON object. Tracebacks, whoever logs them, show frames and exception
types but never exception messages: a message may quote data (an ID number in
a ValueError, a row in a database driver's error). What Python itself would
print to stderr (a warning, an exception no one can catch, a log call that
fails, an uncaught exception) becomes a log line the same way: its kind and
place, never its message, the object's repr or the call's arguments."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
import traceback
import types
import warnings
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
    handler = ScrubbedStreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter(TEXT_FORMAT))
    logging.basicConfig(level=env.get("EID_LOG_LEVEL", "INFO").upper(), handlers=[handler])
    # Alembic narrates every schema check at INFO; only its problems matter here.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # Python's own reports, each replaced only if it is Python's: a hook
    # someone installed on purpose (a test runner's, an error reporter's)
    # stays, or a CLI test would turn off pytest's for the whole session.
    _replace_default(threading, "excepthook", threading.__excepthook__, thread_exception_handler)
    _replace_default(sys, "excepthook", sys.__excepthook__, uncaught_exception_handler)
    _replace_default(sys, "unraisablehook", sys.__unraisablehook__, unraisable_handler)
    python_shows = getattr(warnings, "_showwarning_orig", warnings.showwarning)
    _replace_default(warnings, "showwarning", python_shows, show_warning)


def _replace_default(module: types.ModuleType, name: str, default: object, hook: object) -> None:
    if getattr(module, name) is default:
        setattr(module, name, hook)


class ScrubbedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler whose failures (a log call with arguments its
    message cannot take, say) are reported as a line of the log. logging's
    own report prints the call's message and arguments to stderr, and the
    arguments may be an ID number or a phone."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        if not logging.raiseExceptions:
            return
        error = sys.exc_info()[1]
        kind = "?" if error is None else type(error).__name__
        report = logging.LogRecord(
            "eid.logs",
            logging.ERROR,
            record.pathname,
            record.lineno,
            "a log line of %s at %s:%d could not be written: %s",
            (record.name, _short(record.pathname), record.lineno, kind),
            None,
        )
        if error is not None:
            report.__dict__.update(traceback_fields(error))
        try:
            self.stream.write(self.format(report) + self.terminator)
            self.flush()
        except Exception:  # noqa: S110 (the stream itself failed: nowhere left to say so)
            pass


def uncaught_exception_handler(
    kind: type[BaseException], error: BaseException, tb: types.TracebackType | None
) -> None:
    """The main thread's uncaught exception, scrubbed: Python's own hook
    prints its message to stderr. Ctrl-C keeps Python's (it has no message)."""
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, tb)
        return
    logging.getLogger("eid").error(
        "uncaught %s", kind.__name__, extra=traceback_fields(error.with_traceback(tb))
    )


def unraisable_handler(unraisable: sys.UnraisableHookArgs) -> None:
    """An exception raised where none can be caught (a __del__, a
    finalizer, a callback from C), scrubbed: Python's own hook prints the
    exception's message and the repr of the object it was raised in."""
    error, where = unraisable.exc_value, unraisable.object
    kind = unraisable.exc_type.__name__
    if isinstance(where, types.FunctionType | types.MethodType | types.BuiltinFunctionType):
        named = where.__qualname__  # the code's name: no value of the object
    else:
        named = "?" if where is None else type(where).__qualname__
    fields = {} if error is None else traceback_fields(error)
    logging.getLogger("eid").error("exception ignored in %s: %s", named, kind, extra=fields)


def show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """A warning as a log line (logger py.warnings) with its category and
    the place that raised it; its message may quote a value or a repr."""
    logging.getLogger("py.warnings").warning(
        "%s at %s:%d", category.__name__, _short(filename), lineno
    )


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
