"""`eid-server load-demo --synthetic N`: what it refuses before it starts."""

from __future__ import annotations

import pytest

from eid_service.cli import build_parser


@pytest.mark.parametrize("value", ["-1", "200001", "99999999999999999999", "many"])
def test_a_synthetic_count_it_should_not_make_is_refused(
    capsys: pytest.CaptureFixture[str], value: str
) -> None:
    """Before, a negative count did nothing unsaid and a huge one made people
    in memory until stopped (the registry tools are for millions)."""
    with pytest.raises(SystemExit) as refused:
        build_parser().parse_args(["load-demo", f"--synthetic={value}"])
    assert refused.value.code == 2
    said = capsys.readouterr().err
    assert "not a whole number" in said or "registry generate" in said
    assert build_parser().parse_args(["load-demo", "--synthetic", "200000"]).synthetic == 200_000
