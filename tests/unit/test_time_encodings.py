"""Times as the API and the SQLite store write them: the fast forms agree with
the library forms they replace (protobuf's FromDatetime, SQLAlchemy's text)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import DateTime, create_engine

from eid_service.api.convert import timestamp
from eid_service.store.sql import Driver

TIMES = [
    datetime(2026, 11, 24, 4, 15, 40, 256000, tzinfo=UTC),
    datetime(2026, 11, 24, 4, 15, 40, tzinfo=UTC),
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(1900, 3, 1, 12, 0, 0, 1, tzinfo=UTC),
    datetime(2026, 6, 1, 7, 0, 0, 5, tzinfo=timezone(timedelta(hours=7))),
    datetime(2026, 6, 1, 7, 0, 0, 5, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
]


def _from_datetime(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


@pytest.mark.parametrize("value", [*TIMES, datetime(2026, 11, 24, 4, 15, 40, 7)])
def test_timestamp_is_what_from_datetime_makes(value: datetime) -> None:
    assert timestamp(value) == _from_datetime(value)


@pytest.mark.parametrize("value", TIMES)
def test_sqlite_time_text_is_what_sqlalchemy_writes(value: datetime) -> None:
    engine = create_engine("sqlite://")
    with engine.connect() as connection:
        driver = Driver(connection)
        sqlalchemy_text = (
            DateTime().dialect_impl(connection.dialect).bind_processor(connection.dialect)
        )
        assert sqlalchemy_text is not None
        expected = sqlalchemy_text(value.astimezone(UTC).replace(tzinfo=None))
        assert driver.time(value) == expected
