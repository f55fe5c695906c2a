"""`eid-server` with a key ring it cannot use or a database it cannot reach:
one line naming which and why, never a traceback, a key or a password."""

from __future__ import annotations

from pathlib import Path

import pytest

from eid_service.cli import main
from eid_service.security.keys import generate_key_ring, save_key_ring

DB_PASSWORD = "s3cret-db-password"


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"{bad", "not valid JSON"),
        (b"\xff\xfe not text", "not UTF-8 text"),
        (b"[" * 100_000, "not valid JSON"),
        (b'{"version": 99}', "unsupported version"),
    ],
    ids=["not-json", "not-utf8", "nested", "wrong-version"],
)
def test_a_key_ring_that_cannot_be_used_is_named_with_why(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    why: str,
) -> None:
    ring = tmp_path / "keys.json"
    ring.write_bytes(content)
    monkeypatch.setenv("EID_KEYS_FILE", str(ring))
    monkeypatch.setenv("EID_DATABASE_URL", f"sqlite:///{tmp_path / 'eid.db'}")
    for command in (["party", "list"], ["serve"]):
        assert main(command) == 2
        printed = capsys.readouterr()
        assert f"cannot use the key ring {ring}: {why}" in printed.out
        assert "Traceback" not in printed.out + printed.err


@pytest.mark.parametrize(
    ("database_url", "why"),
    [
        # Nothing listens there.
        (
            f"postgresql+psycopg://postgres:{DB_PASSWORD}@127.0.0.1:1/eid",
            "OperationalError: nothing accepts connections there",
        ),
        # PostgreSQL answers, but has no such database (a typo in the URL).
        (
            f"postgresql+psycopg://postgres:{DB_PASSWORD}@127.0.0.1:5432/eid_no_such_database",
            "OperationalError: no such database or user",
        ),
        ("sqlite:////no/such/folder/eid.db", "OperationalError: the file cannot be opened"),
    ],
    ids=["postgresql-down", "postgresql-no-database", "sqlite-no-folder"],
)
def test_a_database_that_cannot_be_reached_is_named_without_its_password(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    database_url: str,
    why: str,
) -> None:
    """Which of the usual reasons, in fixed words: the driver's own message is
    never printed (it may quote a query), but "nothing listens" and "no such
    database" send the operator to different places."""
    save_key_ring(generate_key_ring(), tmp_path / "keys.json")
    monkeypatch.setenv("EID_KEYS_FILE", str(tmp_path / "keys.json"))
    monkeypatch.setenv("EID_DATABASE_URL", database_url)
    assert main(["party", "list"]) == 1
    printed = capsys.readouterr()
    assert "the database cannot be reached at " in printed.out
    assert f"({why})" in " ".join(printed.out.split())
    assert DB_PASSWORD not in printed.out + printed.err
    assert "Traceback" not in printed.out + printed.err
