"""`eid-server outbox`'s options: what it refuses before it starts."""

from __future__ import annotations

import pytest

from eid_service.cli import build_parser


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("0", "1 to 100,000"),
        ("-1", "1 to 100,000"),
        ("99999999999999999999", "1 to 100,000"),
        ("many", "not a whole number"),
    ],
)
def test_a_limit_it_cannot_list_with_is_refused(
    capsys: pytest.CaptureFixture[str], value: str, said: str
) -> None:
    """Before, --limit 0 listed an empty table as if nothing were dead and a
    huge one ended in an OverflowError traceback from the driver."""
    with pytest.raises(SystemExit) as refused:
        build_parser().parse_args(["outbox", "dead", f"--limit={value}"])
    assert refused.value.code == 2
    assert said in capsys.readouterr().err
    assert build_parser().parse_args(["outbox", "dead", "--limit", "100000"]).limit == 100_000


@pytest.mark.parametrize("blank", ["", "  "])
def test_an_empty_message_id_is_refused_not_looked_for(
    capsys: pytest.CaptureFixture[str], blank: str
) -> None:
    """Before, `outbox retry ""` answered "no dead delivery" as if it had looked."""
    with pytest.raises(SystemExit) as refused:
        build_parser().parse_args(["outbox", "retry", "msg_0123", blank])
    assert refused.value.code == 2
    assert "an empty message id" in capsys.readouterr().err
    assert build_parser().parse_args(["outbox", "retry", "msg_0123"]).message_ids == ["msg_0123"]
