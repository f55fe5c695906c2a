"""`eid-server init-dev`: development keys, never through a planted symlink."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from eid_service.cli import main


def test_init_dev_refuses_a_dangling_symlink_where_the_ring_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before, the ring was not written through it, but the command ended in a
    FileExistsError traceback."""
    ring = tmp_path / "keys.json"
    elsewhere = tmp_path / "elsewhere.json"
    ring.symlink_to(elsewhere)
    monkeypatch.setenv("EID_KEYS_FILE", str(ring))
    monkeypatch.setenv("EID_DATABASE_URL", f"sqlite:///{tmp_path / 'eid.db'}")
    assert main(["init-dev"]) == 1
    assert "is a symlink to nothing" in capsys.readouterr().out
    assert ring.is_symlink() and not elsewhere.exists()
    ring.unlink()
    assert main(["init-dev"]) == 0
    assert os.stat(ring).st_mode & 0o777 == 0o600
