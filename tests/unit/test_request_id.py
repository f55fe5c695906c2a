"""Client request ids for idempotent retries."""

from __future__ import annotations

import uuid

import pytest

from eid_service.domain.errors import InvalidInput
from eid_service.domain.request_id import parse_request_id


def test_empty_means_not_idempotent() -> None:
    assert parse_request_id("") is None


@pytest.mark.parametrize(
    "raw",
    [
        "a",
        "x" * 64,
        str(uuid.UUID(int=1)),
        "01J9Z8Q4X7K2M3N4P5Q6R7S8T9",
        "client-1:42",
        "A.b_c-D:e",
    ],
)
def test_valid_ids_are_returned_unchanged(raw: str) -> None:
    assert parse_request_id(raw) == raw


@pytest.mark.parametrize(
    "raw",
    ["x" * 65, " ", " abc", "abc ", "a b", "abc\n", "ä", "a/b", "a@b", "🔑", "a\x00b", "a,b"],
)
def test_invalid_ids_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_request_id(raw)
    exc = info.value
    assert exc.reason == "REQUEST_ID_INVALID"
    assert [(v.field, v.reason) for v in exc.violations] == [("request_id", "REQUEST_ID_INVALID")]
    if raw.strip() not in ("", "a"):
        assert raw.strip() not in exc.message


def test_field_name_is_reported_as_given() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_request_id("a b", field="meta.request_id")
    assert info.value.violations[0].field == "meta.request_id"
