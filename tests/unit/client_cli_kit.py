"""The `eid` CLI's unit tests: the command run as a user runs it afresh."""

from __future__ import annotations

import io

import pytest

# Settings the CLI reads from the environment: this machine's must not leak in.
CLI_SETTINGS = ("EID_TARGET", "EID_API_KEY", "EID_PASSWORD", "EID_SESSION", "EID_OFFICER_KEY")


def fresh_terminal(monkeypatch: pytest.MonkeyPatch, columns: int | None = 200) -> None:
    """None of the CLI's EID_ settings, no person at the keyboard (an empty
    stdin), and a terminal `columns` wide (as it is, when None)."""
    for name in CLI_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    if columns is not None:
        monkeypatch.setenv("COLUMNS", str(columns))
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
