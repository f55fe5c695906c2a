"""Log lines: EID_LOG_FORMAT=json gives one JSON object per line; tracebacks
(INTERNAL errors, outbox failures) show frames and exception types but never
an exception's message, which may quote personal data."""

from __future__ import annotations

import asyncio
import gc
import io
import json
import logging
import sys
import threading
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest

from eid_service.domain.notices import Language, NoticeKind, code_notice
from eid_service.logs import (
    JsonFormatter,
    ScrubbedStreamHandler,
    TextFormatter,
    configure_logging,
    loop_exception_handler,
    scrubbed_traceback,
    show_warning,
    thread_exception_handler,
    traceback_fields,
    uncaught_exception_handler,
    unraisable_handler,
)
from eid_service.notify.dispatcher import OutboxDispatcher
from eid_service.notify.senders import ALL_CHANNELS, Route
from eid_service.use_cases.ports import OutgoingMessage, Repositories
from tests.unit.fake_store import FakeUnitOfWork

PHONE = "+84912345678"
ID_NUMBER = "079123456789"
T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
T = TypeVar("T")


def _lookup(citizens: dict[str, str], personal_id: str) -> str:
    return citizens[personal_id]


def _raised() -> BaseException:
    try:
        try:
            _lookup({}, ID_NUMBER)
        except KeyError as missing:
            raise RuntimeError(f"no citizen with ID {ID_NUMBER}") from missing
    except RuntimeError as error:
        return error
    raise AssertionError("unreachable")


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("eid.rpc", logging.ERROR, __file__, 1, "failed %s", ("x",), None)
    record.__dict__.update(extra)
    return record


def test_a_scrubbed_traceback_has_each_frame_and_type_of_the_chain_but_no_message() -> None:
    text = scrubbed_traceback(_raised())
    assert ID_NUMBER not in text
    assert text.count("Traceback (most recent call last; messages withheld):") == 2
    assert "in _lookup" in text and "return citizens[personal_id]" in text
    assert text.index("KeyError") < text.index("which led to:") < text.index("RuntimeError")
    assert 'File "tests/unit/test_logs.py"' in text  # from its import root, not this machine's


def test_json_lines_carry_the_fields_and_the_scrubbed_traceback() -> None:
    record = _record(fields={"rpc": "/eid.v1.IdentityService/Verify", "party_id": "rp_1"})
    record.__dict__.update(traceback_fields(_raised()))
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "failed x"
    assert (parsed["level"], parsed["logger"]) == ("ERROR", "eid.rpc")
    assert parsed["rpc"] == "/eid.v1.IdentityService/Verify" and parsed["party_id"] == "rp_1"
    assert "RuntimeError" in parsed["traceback"] and ID_NUMBER not in line


def test_an_exception_logged_by_anyone_is_scrubbed_in_either_format() -> None:
    error = _raised()
    record = _record(exc_info=(type(error), error, error.__traceback__))
    for formatter in (JsonFormatter(), TextFormatter("%(message)s")):
        text = formatter.format(record)
        assert "RuntimeError" in text and ID_NUMBER not in text


def test_the_log_format_setting_is_checked() -> None:
    with pytest.raises(ValueError, match="EID_LOG_FORMAT must be text or json"):
        configure_logging({"EID_LOG_FORMAT": "xml"})


class Broken:
    """A sender with a defect whose exception quotes the recipient."""

    async def send(self, message: OutgoingMessage) -> None:
        raise KeyError(f"no route for {message.destination}")


async def test_an_outbox_sender_defect_is_logged_with_its_frames_not_its_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    uow = FakeUnitOfWork()
    notice = code_notice(
        NoticeKind.ACTIVATION_CODE, "654321", timedelta(minutes=10), Language.ENGLISH
    )
    await uow.atomically(lambda r: r.outbox.add("sms", PHONE, notice, T0))
    worker = OutboxDispatcher(uow, [Route("broken", ALL_CHANNELS, Broken())], lambda: T0)
    with caplog.at_level(logging.INFO, logger="eid.outbox"):
        await worker.deliver_pending()
    [defect] = [r for r in caplog.records if r.levelno == logging.ERROR]
    text = TextFormatter("%(message)s").format(defect)
    assert "sender broken raised KeyError" in text
    assert "in send" in text and "raise KeyError" in text
    assert PHONE not in caplog.text and PHONE not in text and "654321" not in text


async def test_a_failed_outbox_pass_is_logged_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Failing(FakeUnitOfWork):
        async def read(self, work: Callable[[Repositories], T]) -> T:
            raise RuntimeError(f"row for {PHONE} unreadable")

    worker = OutboxDispatcher(Failing(), [Route("broken", ALL_CHANNELS, Broken())], lambda: T0)
    stop = asyncio.Event()
    with caplog.at_level(logging.INFO, logger="eid.outbox"):
        task = asyncio.create_task(worker.run(stop))
        for _ in range(100):
            if any(r.levelno == logging.ERROR for r in caplog.records):
                break
            await asyncio.sleep(0.01)
        stop.set()
        worker.wake()
        await task
    [failed] = [r for r in caplog.records if r.levelno == logging.ERROR]
    text = JsonFormatter().format(failed)
    assert "outbox pass failed: RuntimeError" in text and "in read" in json.loads(text)["traceback"]
    assert PHONE not in text


async def test_what_the_event_loop_reports_is_scrubbed_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """asyncio's own report of a task's lost exception quotes its repr (the
    message) and a failed callback's arguments in the log line itself, past
    the formatters' reach: the server's loop reports them scrubbed."""

    async def lost() -> None:
        raise RuntimeError(f"no citizen with ID {ID_NUMBER}")

    def failing(phone: str) -> None:
        raise KeyError(phone)

    loop = asyncio.get_running_loop()
    loop.set_exception_handler(loop_exception_handler)
    try:
        with caplog.at_level(logging.DEBUG):
            task = loop.create_task(lost())
            await asyncio.sleep(0)
            del task
            gc.collect()  # the lost exception is reported as the task goes
            loop.call_soon(failing, PHONE)
            await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    reported = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(reported) == 2
    for formatter in (JsonFormatter(), TextFormatter("%(message)s")):
        text = "\n".join(formatter.format(r) for r in reported)
        assert "RuntimeError" in text and "KeyError" in text and "in lost" in text
        assert ID_NUMBER not in text and PHONE not in text


def test_what_a_dying_thread_reports_is_scrubbed_too(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An uncaught exception in a thread (the store's, the outbox's): Python's
    own hook printed its message, an ID number here, to stderr."""
    monkeypatch.setattr(threading, "excepthook", thread_exception_handler)

    def fails() -> None:
        raise _raised()

    with caplog.at_level(logging.DEBUG):
        dying = threading.Thread(target=fails, name="db-writer")
        dying.start()
        dying.join()
    (reported,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    for formatter in (JsonFormatter(), TextFormatter("%(message)s")):
        text = formatter.format(reported)
        assert "db-writer" in text and "RuntimeError" in text and "in fails" in text
        assert ID_NUMBER not in text


def test_configuring_the_logs_installs_the_thread_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threading, "excepthook", threading.__excepthook__)
    for name in ("excepthook", "unraisablehook"):
        monkeypatch.setattr(sys, name, getattr(sys, f"__{name}__"))
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)
    monkeypatch.setattr(logging, "basicConfig", lambda **_: None)  # the root stays as it is
    configure_logging({})
    assert threading.excepthook is thread_exception_handler
    assert sys.excepthook is uncaught_exception_handler
    assert sys.unraisablehook is unraisable_handler
    assert warnings.showwarning is show_warning


def test_configuring_the_logs_leaves_hooks_someone_else_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A test runner's (pytest's: the CLI tests configure the logs) or an
    error reporter's hooks are theirs to keep."""

    def theirs(*_: object) -> None:
        pass

    for module, name in [
        (threading, "excepthook"),
        (sys, "excepthook"),
        (sys, "unraisablehook"),
        (warnings, "showwarning"),
    ]:
        monkeypatch.setattr(module, name, theirs)
    monkeypatch.setattr(logging, "basicConfig", lambda **_: None)
    configure_logging({})
    hooks: list[object] = [
        threading.excepthook,
        sys.excepthook,
        sys.unraisablehook,
        warnings.showwarning,
    ]
    assert all(hook is theirs for hook in hooks)


def _both_formats(records: list[logging.LogRecord]) -> str:
    return "\n".join(
        formatter.format(r) for r in records for formatter in (JsonFormatter(), TextFormatter())
    )


def test_a_warning_is_a_log_line_naming_its_kind_and_place_not_its_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Python prints a warning's message to stderr, past the log's format:
    a library's warning may quote a value or an object's repr."""
    with caplog.at_level(logging.DEBUG), warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show_warning
        warnings.warn(f"no portrait for {ID_NUMBER}", UserWarning, stacklevel=1)
    [warned] = [r for r in caplog.records if r.name == "py.warnings"]
    text = _both_formats([warned])
    assert "UserWarning at tests/unit/test_logs.py:" in text
    assert ID_NUMBER not in text


class _Holder:
    """An object whose repr is personal data and whose finalizer fails."""

    def __repr__(self) -> str:
        return f"<holder of {PHONE}>"

    def __del__(self) -> None:
        raise ValueError(f"cannot release the record of {ID_NUMBER}")


def test_an_exception_no_one_can_catch_is_logged_scrubbed(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python's own report of an exception in a __del__ quotes the
    exception's message and the object's repr."""
    monkeypatch.setattr(sys, "unraisablehook", unraisable_handler)
    with caplog.at_level(logging.DEBUG):
        _Holder()
        gc.collect()
    [reported] = [r for r in caplog.records if r.levelno == logging.ERROR]
    text = _both_formats([reported])
    assert "exception ignored in _Holder.__del__: ValueError" in text and "in __del__" in text
    assert ID_NUMBER not in text and PHONE not in text


def test_a_log_call_that_cannot_be_written_is_reported_without_its_arguments(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """logging's own report of a failed log call prints the call's message
    and arguments to stderr."""
    for formatter in (JsonFormatter(), TextFormatter()):
        stream = io.StringIO()
        handler = ScrubbedStreamHandler(stream)
        handler.setFormatter(formatter)
        logger = logging.getLogger("eid.test.failing")
        logger.addHandler(handler)
        logger.propagate = False  # pytest's own handlers would fail on it too
        try:
            logger.error("looked up %d", ID_NUMBER)
        finally:
            logger.removeHandler(handler)
            logger.propagate = True
        written = stream.getvalue() + "".join(capsys.readouterr())
        assert "a log line of eid.test.failing at tests/unit/test_logs.py:" in written
        assert "could not be written: TypeError" in written and "in getMessage" in written
        assert ID_NUMBER not in written


def test_an_uncaught_exception_is_logged_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    error = _raised()
    with caplog.at_level(logging.DEBUG):
        uncaught_exception_handler(type(error), error, error.__traceback__)
    [reported] = caplog.records
    text = _both_formats([reported])
    assert "uncaught RuntimeError" in text and "in _lookup" in text
    assert ID_NUMBER not in text
