"""Domain errors and busy-store failures map to the statuses clients retry on."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import grpc
import pytest
from google.rpc import error_details_pb2
from sqlalchemy.exc import IntegrityError, OperationalError

from eid_service.api.errors import to_status
from eid_service.domain.errors import (
    Aborted,
    AlreadyExists,
    DeadlineExceeded,
    DomainError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    TooLarge,
    TooManyAttempts,
    Unauthenticated,
    Unavailable,
)
from eid_service.store.database import store_error


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidInput.of("f", "R", "d"), grpc.StatusCode.INVALID_ARGUMENT),
        (NotFound("R", "m"), grpc.StatusCode.NOT_FOUND),
        (AlreadyExists("R", "m"), grpc.StatusCode.ALREADY_EXISTS),
        (PreconditionFailed("R", "m"), grpc.StatusCode.FAILED_PRECONDITION),
        (Unauthenticated("R", "m"), grpc.StatusCode.UNAUTHENTICATED),
        (PermissionDenied("R", "m"), grpc.StatusCode.PERMISSION_DENIED),
        (TooManyAttempts("R", "m"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (Unavailable("R", "m"), grpc.StatusCode.UNAVAILABLE),
        (TooLarge("R", "m"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (DeadlineExceeded("R", "m"), grpc.StatusCode.DEADLINE_EXCEEDED),
    ],
)
def test_each_kind_has_its_status_and_error_info(error: DomainError, code: grpc.StatusCode) -> None:
    mapped, status = to_status(error)
    assert mapped == code
    assert status.code == code.value[0]
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert (info.reason, info.domain) == ("R", "eid.v1")


def test_field_violations_travel_as_bad_request() -> None:
    _, status = to_status(InvalidInput.of("phone_number", "PHONE_NUMBER_INVALID", "bad phone"))
    bad = error_details_pb2.BadRequest()
    assert status.details[1].Unpack(bad)
    violation = bad.field_violations[0]
    assert (violation.field, violation.reason) == ("phone_number", "PHONE_NUMBER_INVALID")


def test_locked_sqlite_is_unavailable_store_busy() -> None:
    locked = OperationalError("UPDATE x", {}, sqlite3.OperationalError("database is locked"))
    error = store_error(locked)
    assert isinstance(error, Unavailable)
    assert error.reason == "STORE_BUSY"


def test_a_unique_key_taken_concurrently_is_aborted() -> None:
    taken = IntegrityError("INSERT x", {}, sqlite3.IntegrityError("UNIQUE constraint failed"))
    error = store_error(taken)
    assert isinstance(error, Aborted)
    assert error.reason == "CONCURRENT_REQUEST"


def test_other_store_errors_are_defects() -> None:
    broken = OperationalError("SELECT x", {}, sqlite3.OperationalError("no such table: x"))
    assert store_error(broken) is None
    assert store_error(ValueError("x")) is None


def test_raw_driver_errors_map_like_wrapped_ones() -> None:
    """Repositories run SQL on the driver directly, so its own errors arrive too."""
    busy = store_error(sqlite3.OperationalError("database is locked"))
    assert isinstance(busy, Unavailable)
    taken = store_error(sqlite3.IntegrityError("UNIQUE constraint failed: shares.id"))
    assert isinstance(taken, Aborted)
    assert store_error(sqlite3.OperationalError("no such column: x")) is None


def test_an_sqlite_server_never_loads_psycopg() -> None:
    """A worker on embedded SQLite keeps PostgreSQL's driver (about 20 MB)
    out of its memory; the store still maps PostgreSQL's errors once loaded."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, eid_service.serve; print('psycopg' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "False"


def test_postgresql_errors_are_mapped_once_psycopg_is_loaded() -> None:
    import psycopg

    gone = store_error(psycopg.OperationalError("server closed the connection"))
    assert isinstance(gone, Unavailable)
    assert gone.reason == "STORE_UNAVAILABLE"


def _reason(error: BaseException) -> str | None:
    mapped = store_error(error)
    assert mapped is None or isinstance(mapped, Unavailable)
    return None if mapped is None else mapped.reason


def test_a_database_that_went_away_is_store_unavailable_with_retry_info() -> None:
    """Refused, lost or ended connections, and a server stopping or starting,
    are told apart from contention: the outage may last, so RetryInfo says 1 s."""
    import psycopg
    from psycopg import errors

    gone = [
        psycopg.OperationalError("connection failed: Connection refused"),
        psycopg.OperationalError("the connection is lost"),
        errors.AdminShutdown("terminating connection due to administrator command"),
        errors.CrashShutdown("terminating connection because of crash of another process"),
        errors.CannotConnectNow("the database system is starting up"),
        errors.ConnectionFailure("connection failure"),
        # SQLAlchemy saw a disconnect (whatever the error it came with).
        OperationalError("SELECT 1", {}, errors.QueryCanceled("x"), connection_invalidated=True),
    ]
    assert [_reason(e) for e in gone] == ["STORE_UNAVAILABLE"] * len(gone)
    refused = store_error(gone[0])
    assert refused is not None
    code, status = to_status(refused)
    assert code is grpc.StatusCode.UNAVAILABLE
    retry = error_details_pb2.RetryInfo()
    assert any(detail.Unpack(retry) for detail in status.details)
    assert retry.retry_delay.seconds == 1


def test_contention_on_a_database_that_is_up_is_store_busy() -> None:
    from psycopg import errors

    busy = [
        errors.SerializationFailure("could not serialize access"),
        errors.DeadlockDetected("deadlock detected"),
        errors.LockNotAvailable("could not obtain lock"),
        errors.QueryCanceled("canceling statement due to statement timeout"),
    ]
    assert [_reason(e) for e in busy] == ["STORE_BUSY"] * len(busy)
