"""The first minutes with the Makefile: `make help` piped or logged has no raw
colour codes, and `make run` says where to point the clients when it serves
elsewhere than their default address."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAKE = shutil.which("make")

pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")


def _make(*args: str, **env: str) -> str:
    assert MAKE is not None
    done = subprocess.run(
        [MAKE, "--no-print-directory", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_help_in_a_pipe_is_plain_text() -> None:
    said = _make("help")
    assert "\x1b" not in said and "\\033" not in said
    assert any(line.split()[:1] == ["run"] for line in said.splitlines())


def _banner(listen: str) -> str:
    """What run's recipe prints about the address, run by bash as make would
    (`make -n` lists the recipe without setting anything up or serving)."""
    recipe = _make("-n", "run", f"EID_LISTEN={listen}").splitlines()
    start = next(i for i, line in enumerate(recipe) if line.startswith("target="))
    end = next(i for i, line in enumerate(recipe) if i >= start and line.endswith("esac"))
    script = "\n".join(recipe[start : end + 1])
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=10, check=True
    ).stdout


@pytest.mark.parametrize(
    ("listen", "target"),
    [
        ("127.0.0.1:50051", None),
        ("0.0.0.0:50051", None),  # every interface, the default port: the default works
        ("0.0.0.0:6000", "127.0.0.1:6000"),
        ("127.0.0.1:6000", "127.0.0.1:6000"),
        ("[::]:7000", "[::1]:7000"),
    ],
)
def test_run_says_where_to_point_the_clients(listen: str, target: str | None) -> None:
    said = _banner(listen)
    if target is None:
        assert "EID_TARGET" not in said
    else:
        assert f"export EID_TARGET={target}" in said
