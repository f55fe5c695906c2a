"""PostgreSQL's own error messages quote values: a unique violation's DETAIL
names the key and its value, a lock or deadlock error the relation and the
tuple, a cancelled or ended statement its cause. Here each of them is
provoked for real under a gRPC server on an ephemeral port, with its log
lines (DEBUG, as text and as JSON), its spans (in-memory exporter), its
answers (message and trailers) and everything the process wrote to stdout
and stderr captured: none may carry the citizen's data, the codes and
passwords of the calls, or PostgreSQL's message text."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from eid.v1 import identity_service_pb2 as pb
from eid.v1 import identity_service_pb2_grpc as pb_grpc
from eid_client._requests import register_request
from eid_service import app
from eid_service.api.errors import STATUS_DETAILS_KEY
from eid_service.demo import demo_citizens, portrait_capture
from eid_service.domain.citizen import Demographics
from eid_service.logs import JsonFormatter, TextFormatter
from eid_service.store import database
from eid_service.telemetry import spans
from eid_service.telemetry.rpc import RpcObserver
from eid_service.telemetry.setup import Telemetry
from tests.e2e.conftest import free_port
from tests.integration import harness as harness_module
from tests.integration.flows import PASSWORD, phone_of
from tests.integration.harness import ServerHarness
from tests.polling import log_until_stopped, until

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

# What PostgreSQL says in these failures: none of it may travel on.
POSTGRES_TEXTS = (
    "duplicate key",
    "Key (",
    "DETAIL",
    "deadlock detected",
    "canceling statement",
    "terminating connection",
    "lock timeout",
    "statement timeout",
    "while updating tuple",
    'relation "accounts"',
    "administrator command",
    "Failing row contains",
    "violates check constraint",
)


@dataclass
class Captured:
    """Everything the server let out."""

    lines: io.StringIO = field(default_factory=io.StringIO)
    exporter: InMemorySpanExporter = field(default_factory=InMemorySpanExporter)
    answers: list[str] = field(default_factory=list)

    def spans_text(self) -> str:
        return "\n".join(_span_text(s) for s in self.exporter.get_finished_spans())


def _span_text(span: ReadableSpan) -> str:
    events = [(e.name, dict(e.attributes or {})) for e in span.events]
    status = (span.status.status_code.name, span.status.description)
    return f"{span.name} {dict(span.attributes or {})} {events} {status}"


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[Captured]:
    """The server's log lines, both formats, from DEBUG up; its spans."""
    found = Captured()
    root = logging.getLogger()
    handlers = [logging.StreamHandler(found.lines), logging.StreamHandler(found.lines)]
    handlers[0].setFormatter(JsonFormatter())
    handlers[1].setFormatter(TextFormatter("%(levelname)s %(name)s %(message)s"))
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(found.exporter))
    tracer = provider.get_tracer("eid_service")

    def traced_bootstrap(*args: Any, **kwargs: Any) -> app.Runtime:
        spans.install(tracer)
        return app.bootstrap(
            *args, telemetry=Telemetry(RpcObserver(tracer, None), [provider]), **kwargs
        )

    monkeypatch.setattr(harness_module, "bootstrap", traced_bootstrap)
    level = root.level
    root.setLevel(logging.DEBUG)
    for handler in handlers:
        root.addHandler(handler)
    try:
        yield found
    finally:
        for handler in handlers:
            root.removeHandler(handler)
        root.setLevel(level)
        spans.install(None)


class Servers:
    """Starts the test's server when it is ready for it (after any setting
    of the database), and stops it before what it let out is checked."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.running: ServerHarness | None = None

    def start(self) -> ServerHarness:
        self.running = ServerHarness(self.database_url).start()
        self.running.add_citizens(demo_citizens())
        return self.running

    def stop(self) -> None:
        if self.running is not None:
            running, self.running = self.running, None
            running.stop()


@pytest.fixture
def servers(database_url: str, captured: Captured) -> Iterator[Servers]:
    made = Servers(database_url)
    try:
        yield made
    finally:
        made.stop()


def _personal_data(citizen: Demographics) -> dict[str, str]:
    national, e164 = phone_of(citizen)
    return {
        "ID number": citizen.personal_id,
        "name": citizen.full_name,
        "birth date": citizen.birth_date.isoformat(),
        "phone": national,
        "phone (E.164)": e164,
        "password": PASSWORD,
    }


def _answer_text(error: Any) -> str:
    """What the client was told: code, message, and every trailer decoded."""
    parts = [error.code().name, error.details() or ""]
    for key, value in error.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY:
            status = status_pb2.Status.FromString(value)
            parts.append(str(status))
            parts += [detail.value.decode("utf-8", "replace") for detail in status.details]
        else:
            parts.append(f"{key}={value!r}")
    return "\n".join(parts)


def _reason(error: Any) -> str:
    """The ErrorInfo reason of a refusal ("" if it has none)."""
    for key, value in error.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY:
            info = error_details_pb2.ErrorInfo()
            status_pb2.Status.FromString(value).details[0].Unpack(info)
            return str(info.reason)
    return ""


def _register_request(citizen: Demographics) -> pb.RegisterRequest:
    return register_request(
        personal_id=citizen.personal_id,
        full_name=citizen.full_name,
        birth_date=citizen.birth_date,
        gender=citizen.gender.value,
        phone_number=phone_of(citizen)[0],
        email="",
        portrait=portrait_capture(citizen.personal_id),
        passport=None,
        request_id=None,
    )


def _call(captured: Captured, rpc: Callable[..., Any], request: Any, **kwargs: Any) -> str:
    """Calls; the status code's name and the ErrorInfo reason ("OK" if it worked)."""
    try:
        rpc(request, timeout=30, **kwargs)
    except grpc.RpcError as error:
        refused: Any = error  # a grpc.Call too
        captured.answers.append(_answer_text(refused))
        return f"{refused.code().name} {_reason(refused)}"
    return "OK"


def _assert_nothing_leaked(
    captured: Captured, capfd: pytest.CaptureFixture[str], secrets: dict[str, str]
) -> None:
    out, err = capfd.readouterr()
    places = {
        "log lines": captured.lines.getvalue(),
        "spans": captured.spans_text(),
        "answers": "\n".join(captured.answers),
        "stdout and stderr": out + err,
    }
    assert captured.lines.getvalue(), "no log line was captured"
    for place, text in places.items():
        # Names, not values: a failure must not print them either.
        leaked = [what for what, value in secrets.items() if value in text]
        assert not leaked, f"in the {place}: " + ", ".join(leaked)
        quoted = [said for said in POSTGRES_TEXTS if said in text]
        assert not quoted, f"PostgreSQL's message is in the {place}: {quoted}"


def _stub(server: ServerHarness) -> tuple[grpc.Channel, pb_grpc.IdentityServiceStub]:
    channel = grpc.insecure_channel(server.target)
    return channel, pb_grpc.IdentityServiceStub(channel)


def test_two_registers_of_one_person_racing_to_the_same_row(
    servers: Servers,
    captured: Captured,
    capfd: pytest.CaptureFixture[str],
    adult: Demographics,
) -> None:
    """Both find no account, then both insert one: PostgreSQL refuses the
    second with a unique violation whose DETAIL quotes the key's value."""
    server = servers.start()
    both_looked = threading.Barrier(2, timeout=20)
    counting = server.runtime.uow.observe

    def observe(sql: str) -> None:
        if counting is not None:
            counting(sql)
        if sql.startswith("SELECT id, state, password_hash FROM accounts"):
            both_looked.wait()  # neither inserts before both have looked

    server.runtime.uow.observe = observe
    channel, stub = _stub(server)
    with channel, ThreadPoolExecutor(2) as pool:
        # From two addresses: one address's counter would take them in turn.
        answers = list(
            pool.map(
                lambda source: _call(
                    captured,
                    stub.Register,
                    _register_request(adult),
                    metadata=(("x-forwarded-for", source),),
                ),
                ("203.0.113.7", "203.0.113.8"),
            )
        )
    assert sorted(answers) == ["ABORTED CONCURRENT_REQUEST", "OK"]
    servers.stop()
    _assert_nothing_leaked(captured, capfd, _personal_data(adult))


def test_a_row_postgresql_refuses_is_an_internal_error_told_by_type_only(
    servers: Servers,
    captured: Captured,
    capfd: pytest.CaptureFixture[str],
    database_url: str,
    adult: Demographics,
) -> None:
    """A constraint the service does not expect (a DBA's, here) refuses the
    new account: PostgreSQL's message quotes the whole failing row. The
    caller gets INTERNAL with an incident id; the log has the error's type
    and frames."""
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute("ALTER TABLE accounts ADD CONSTRAINT frozen CHECK (false) NOT VALID")
    server = servers.start()
    channel, stub = _stub(server)
    with channel:
        assert _call(captured, stub.Register, _register_request(adult)) == "INTERNAL INTERNAL"
    servers.stop()
    logged = captured.lines.getvalue()
    assert "error=CheckViolation" in logged and "psycopg.errors.CheckViolation" in logged
    _assert_nothing_leaked(captured, capfd, _personal_data(adult))


ENDINGS = {
    "lock timeout": "UNAVAILABLE STORE_BUSY",
    "statement timeout": "UNAVAILABLE STORE_BUSY",
    "cancelled": "UNAVAILABLE STORE_BUSY",
    "deadlock": "UNAVAILABLE STORE_BUSY",
    "connection ended": "UNAVAILABLE STORE_UNAVAILABLE",
}


def _waiting_backend(admin: psycopg.Connection[Any]) -> int | None:
    """The server's session waiting for a lock in this database, if one is."""
    row = admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    ).fetchone()
    return None if row is None else int(row[0])


@pytest.mark.parametrize("ending", ENDINGS)
def test_an_activation_stuck_on_a_row_lock_ended_by_postgresql(
    servers: Servers,
    captured: Captured,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    adult: Demographics,
    ending: str,
) -> None:
    """Another session holds the account's row; the Activate that must
    update it waits, and PostgreSQL ends the wait in each of its ways. The
    caller is told the store is busy or away, and nothing PostgreSQL said
    (the relation, the tuple, the cause) goes further. Then the same
    Activate works."""
    url = database_url
    if ending == "lock timeout":
        monkeypatch.setattr(database, "POSTGRES_LOCK_TIMEOUT_MS", 300)
    if ending == "statement timeout":
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(
                "ALTER DATABASE " + url.rsplit("/", 1)[1] + " SET statement_timeout = 300"
            )
    server = servers.start()
    channel, stub = _stub(server)
    secrets = _personal_data(adult)
    with channel, ThreadPoolExecutor(1) as pool, psycopg.connect(url, autocommit=True) as admin:
        assert _call(captured, stub.Register, _register_request(adult)) == "OK"
        code = secrets["activation code"] = server.wait_for_code(phone_of(adult)[1])
        activate = pb.ActivateRequest(
            personal_id=adult.personal_id, activation_code=code, new_password=PASSWORD
        )
        with psycopg.connect(url) as holder:
            holder.execute("SELECT id FROM accounts FOR UPDATE")
            answer = pool.submit(_call, captured, stub.Activate, activate)
            if ending in {"cancelled", "connection ended", "deadlock"}:
                waiting = until(lambda: _waiting_backend(admin), 20)
                assert waiting, "the Activate never waited for the row"
                if ending == "cancelled":
                    admin.execute("SELECT pg_cancel_backend(%s)", (waiting,))
                elif ending == "connection ended":
                    admin.execute("SELECT pg_terminate_backend(%s)", (waiting,))
                else:  # wait for the code's row, which the Activate holds
                    holder.execute("UPDATE activation_codes SET attempts = attempts")
            assert answer.result(30) == ENDINGS[ending]
            holder.rollback()
        if ending == "statement timeout":
            admin.execute("ALTER DATABASE " + url.rsplit("/", 1)[1] + " RESET statement_timeout")
        assert _call(captured, stub.Activate, activate) == "OK"
    servers.stop()
    _assert_nothing_leaked(captured, capfd, secrets)


# Stands for a library of the server's that, once logging is set up, warns
# with a value in the message, drops an object whose __del__ fails (an
# "unraisable" error, reported with the object's repr), and logs with
# arguments its message cannot take (a "logging error", reported with the
# arguments). Each quotes personal data.
MISBEHAVING_LIBRARY = """
import logging
import warnings

import eid_service.logs

ID_NUMBER, PHONE = {id_number!r}, {phone!r}
_configure = eid_service.logs.configure_logging


class Holder:
    def __repr__(self):
        return f"<Holder of {{PHONE}}>"

    def __del__(self):
        raise ValueError(f"cannot release the record of {{ID_NUMBER}}")


def configure_logging(env=None):
    _configure(env)
    warnings.warn(f"no portrait for {{ID_NUMBER}}, phone {{PHONE}}", UserWarning)
    Holder()
    logging.getLogger("library").warning("looked up %d", ID_NUMBER)


eid_service.logs.configure_logging = configure_logging
"""


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_what_python_itself_reports_in_a_serving_process_is_scrubbed(
    database_url: str, tmp_path: Path, adult: Demographics, log_format: str
) -> None:
    """`eid-server serve` on PostgreSQL: a library's warning, an exception
    raised where none can be caught (a __del__) and a log call that cannot
    be formatted were printed by Python itself to stderr, messages,
    reprs and arguments included, past the log format. Each is now a line
    of the log, in its format, naming what happened and where, without
    the values."""
    secrets = _personal_data(adult)
    library = tmp_path / "library"
    library.mkdir()
    (library / "sitecustomize.py").write_text(
        MISBEHAVING_LIBRARY.format(id_number=adult.personal_id, phone=secrets["phone"])
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(library), *sys.path]),
        "EID_DATABASE_URL": database_url,
        "EID_LISTEN": "127.0.0.1:0",
        "EID_LOG_FORMAT": log_format,
        "EID_LOG_LEVEL": "DEBUG",
        "EID_CONSOLE_SENDER": "false",
        "OTEL_SDK_DISABLED": "true",
    }
    eid_server = str(Path(sys.executable).parent / "eid-server")
    subprocess.run([eid_server, "init-dev"], cwd=tmp_path, env=env, check=True, capture_output=True)
    server = subprocess.Popen(
        [eid_server, "serve", "--workers", "1"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines, out = log_until_stopped(server, "serving eid.v1")
    err = "\n".join(lines)
    assert server.returncode == 0, err
    printed = [what for what, value in secrets.items() if value in out + err]
    assert not printed, "printed: " + ", ".join(printed)
    if log_format == "json":
        for line in lines:
            assert line.startswith("{"), "a line that is not JSON"
            json.loads(line)
    assert "UserWarning" in err and "Holder" in err and "ValueError" in err
    assert "TypeError" in err  # the log call's failure


def test_a_worker_that_fails_is_reported_as_a_log_line(database_url: str, tmp_path: Path) -> None:
    """`serve --workers 2` while PostgreSQL refuses the database: each
    worker's failure was printed by multiprocessing as a raw traceback
    with the driver's message (dozens of non-JSON lines every restart);
    it is one JSON line naming the database and why in fixed words."""
    # A database this PostgreSQL does not have.
    missing = f"{database_url.rsplit('/', 1)[0]}/eid_missing_{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "EID_DATABASE_URL": missing,
        "EID_LISTEN": f"127.0.0.1:{free_port()}",
        "EID_LOG_FORMAT": "json",
        "OTEL_SDK_DISABLED": "true",
    }
    eid_server = str(Path(sys.executable).parent / "eid-server")
    subprocess.run([eid_server, "init-dev"], cwd=tmp_path, env=env, check=True, capture_output=True)
    server = subprocess.Popen(
        [eid_server, "serve", "--workers", "2"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines, _ = log_until_stopped(server, "exited with status 1")  # a worker replaced
    assert any("exited with status 1" in line for line in lines), "\n".join(lines)
    assert not [line for line in lines if not line.startswith("{")], "lines that are not JSON"
    # Since ead3e17 the line names the database (its URL, password masked)
    # and the reason in fixed words; psycopg's own text stays out.
    failed = [json.loads(line) for line in lines if "cannot be reached" in line]
    assert failed, "\n".join(lines)
    assert failed[0]["message"].startswith("not serving: the database cannot be reached at ")
    assert failed[0]["message"].endswith(" (OperationalError: no such database or user)")
    printed = "\n".join(lines)
    assert "FATAL" not in printed and "does not exist" not in printed  # psycopg's message
