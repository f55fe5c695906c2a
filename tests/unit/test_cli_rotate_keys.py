"""`eid-server rotate-keys`'s options: what it refuses before it starts."""

from __future__ import annotations

import pytest

from eid_service.cli import build_parser


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--page", "0", "1 to 100,000"),
        ("--page", "-1", "1 to 100,000"),
        ("--page", "99999999999999999999", "1 to 100,000"),
        ("--page", "ten", "not a whole number"),
        ("--wait", "inf", "0 to 3600"),
        ("--wait", "nan", "0 to 3600"),
        ("--wait", "-1", "0 to 3600"),
        ("--wait", "soon", "not a number"),
    ],
)
def test_a_page_or_wait_it_cannot_work_with_is_refused(
    capsys: pytest.CaptureFixture[str], option: str, value: str, said: str
) -> None:
    """Before, --page 0 moved nothing and reported rows still due, a negative
    page was the whole table in one transaction on SQLite and an error on
    PostgreSQL, and --wait inf slept for ever."""
    with pytest.raises(SystemExit) as refused:
        build_parser().parse_args(["rotate-keys", f"{option}={value}"])
    assert refused.value.code == 2
    assert said in capsys.readouterr().err


def test_the_bounds_themselves_are_taken() -> None:
    args = build_parser().parse_args(["rotate-keys", "--page", "100000", "--wait", "0"])
    assert (args.page, args.wait) == (100_000, 0.0)
    args = build_parser().parse_args(["rotate-keys", "--page", "1", "--wait", "3600"])
    assert (args.page, args.wait) == (1, 3600.0)
