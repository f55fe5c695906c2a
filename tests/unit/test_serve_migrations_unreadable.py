"""A build whose migration files cannot tell the newest schema revision (a
packaging fault) is refused once, by `serve` before any worker starts, with
the reason: not by each worker, which the supervisor would replace forever."""

from __future__ import annotations

import logging

import pytest

from eid_service import serve as serving
from eid_service.config import Settings
from eid_service.store.schema_version import ShippedMigrationsUnreadable
from eid_service.supervisor import CANNOT_START


def test_unreadable_migrations_stop_serve_before_any_worker(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def unreadable() -> None:
        raise ShippedMigrationsUnreadable("0021_x.py: no literal `revision` and `down_revision`")

    started: list[object] = []
    monkeypatch.setattr(serving, "shipped_revisions", unreadable)
    monkeypatch.setattr(serving, "_serve_claimed", lambda settings: started.append(settings))
    settings = Settings.from_env({"EID_LISTEN": "127.0.0.1:0", "EID_WORKERS": "2"})
    with caplog.at_level(logging.ERROR, logger="eid.server"):
        assert serving.serve(settings) == CANNOT_START
    assert started == []
    assert "this build's migrations cannot be read: 0021_x.py" in caplog.text
