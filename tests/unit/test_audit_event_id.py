"""Audit event ids come in creation order, stay unguessable, and page tokens
naming ids from before still work."""

from __future__ import annotations

import time

import pytest

from eid_service.domain.audit_event_id import EVENT_ID, new_event_id
from eid_service.domain.errors import InvalidInput
from eid_service.use_cases import pages

OLD_STYLE = "evt_00112233445566778899"


def test_ids_made_later_sort_after_earlier_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []
    for now_ms in (1_700_000_000_000, 1_700_000_000_001, 1_700_000_123_456, 2_000_000_000_000):
        monkeypatch.setattr(time, "time_ns", lambda t=now_ms: t * 1_000_000)
        made.extend(new_event_id() for _ in range(50))
    assert [i[:16] for i in made] == sorted(i[:16] for i in made)
    assert made[::50] == sorted(made[::50])


def test_ids_of_the_same_millisecond_differ_in_their_random_part(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(time, "time_ns", lambda: 1_700_000_000_000_000_000)
    ids = {new_event_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert len({i[16:] for i in ids}) == 1000  # 80 random bits each


def test_an_id_is_evt_then_32_hex_digits_and_fits_its_column() -> None:
    made = new_event_id()
    assert EVENT_ID.fullmatch(made)
    assert len(made) == 36 <= 40  # audit_events.id and verification_receipts.id are VARCHAR(40)


@pytest.mark.parametrize("last_id", [OLD_STYLE, "evt_" + "0123456789abcdef" * 2])
def test_a_page_token_names_an_id_of_either_form(last_id: str) -> None:
    assert pages.after_id(pages.next_page_token(last_id), EVENT_ID) == last_id


@pytest.mark.parametrize(
    "last_id",
    ["evt_" + "0" * 19, "evt_" + "0" * 21, "evt_" + "0" * 31, "evt_" + "0" * 33, "evt_" + "G" * 20],
)
def test_a_page_token_naming_no_event_id_is_refused(last_id: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        pages.after_id(pages.next_page_token(last_id), EVENT_ID)
    assert refused.value.reason == "PAGE_TOKEN_INVALID"
