"""Commands started as a terminal's foreground job would be: Ctrl-C (SIGINT)
reaches them whatever started pytest.

A non-interactive shell starts a background job (`pytest ... &`) with SIGINT
ignored, and a program started with a signal ignored keeps it ignored, as Unix
programs should: run that way, every command a test starts would be deaf to
Ctrl-C, and a test of what Ctrl-C does would fail for how pytest was launched."""

from __future__ import annotations

import sys

# Put SIGINT back to its default action, then become the command (exec keeps it).
_EXEC = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL);"
    " os.execv(sys.argv[1], sys.argv[1:])"
)


def ctrl_c_restored(argv: list[str]) -> list[str]:
    """`argv` (an executable's path first), run with SIGINT at its default."""
    return [sys.executable, "-c", _EXEC, *argv]
