"""Log lines: EID_LOG_FORMAT=json gives one JSON object per line; tracebacks
(INTERNAL errors, outbox failures) show frames and exception types but never
an exception's message, which may quote personal data."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest

from eid_service.domain.notices import Language, NoticeKind, code_notice
from eid_service.logs import (
    JsonFormatter,
    TextFormatter,
    configure_logging,
    loop_exception_handler,
    scrubbed_traceback,
    thread_exception_handler,
    traceback_fields,
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
    monkeypatch.setattr(logging, "basicConfig", lambda **_: None)  # the root stays as it is
    configure_logging({})
    assert threading.excepthook is thread_exception_handler
