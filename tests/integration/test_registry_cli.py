"""`eid-server registry import` as an operator runs it: what it refuses
before it starts, and what it prints."""

from __future__ import annotations

import contextlib
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from eid_service.cli import main as eid_server
from eid_service.domain.registry_person import RegistryPerson
from eid_service.registry_tools.generator import generate
from eid_service.registry_tools.records import jsonl_lines
from eid_service.security.keys import generate_key_ring, save_key_ring
from tests.ctrl_c import ctrl_c_restored
from tests.integration.test_registry_bulk import TODAY
from tests.polling import until


@pytest.fixture
def operator_env(sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A migrated SQLite database and a key ring, as EID_ settings; the folder."""
    shutil.copyfile(sqlite_template, tmp_path / "eid.db")
    save_key_ring(generate_key_ring(), tmp_path / "keys.json")
    monkeypatch.setenv("EID_DATABASE_URL", f"sqlite:///{tmp_path / 'eid.db'}")
    monkeypatch.setenv("EID_KEYS_FILE", str(tmp_path / "keys.json"))
    return tmp_path


def test_an_errors_file_that_cannot_be_written_is_refused_before_the_import(
    operator_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    people = operator_env / "people.jsonl"
    people.write_text(jsonl_lines(generate(3, 20, TODAY)), encoding="utf-8")
    for errors in (operator_env / "no-such-folder" / "bad.csv", operator_env):
        code = eid_server(
            ["registry", "import", str(people), "--workers", "0", "--errors", str(errors)]
        )
        assert code == 2
        assert "cannot write --errors" in capsys.readouterr().out
    # Nothing was imported: the same file now adds everyone.
    assert eid_server(["registry", "import", str(people), "--workers", "0"]) == 0
    assert "20 added" in capsys.readouterr().out


def test_a_mistyped_date_of_death_is_refused_without_being_repeated(
    operator_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["registry", "mark-deceased", "--id", "001190791514", "--date", "2026-02-30"]
    with pytest.raises(SystemExit) as refused:
        eid_server(argv)
    assert refused.value.code == 2
    printed = capsys.readouterr()
    assert "not a date (YYYY-MM-DD)" in printed.err
    assert "2026-02-30" not in printed.err + printed.out


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--seed", "-1", "0 or more"),
        ("--as-of", "0001-01-01", "between 1994-01-01 and 2399-12-31"),
        ("--as-of", "2400-06-01", "between 1994-01-01 and 2399-12-31"),
    ],
)
def test_generate_refuses_a_seed_or_day_it_cannot_make_people_from(
    operator_env: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, said: str
) -> None:
    """Before, a negative seed or a day that would give someone a birth year
    outside 1900-2399 ended in a ValueError traceback after setting up."""
    out = operator_env / "people.jsonl"
    with pytest.raises(SystemExit) as refused:
        eid_server(["registry", "generate", "--count", "50", "--out", str(out), option, value])
    assert refused.value.code == 2
    assert said in capsys.readouterr().err
    assert not out.exists()


def test_generate_makes_people_on_the_first_and_last_day_it_takes(
    operator_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for day in ("1994-01-01", "2399-12-31"):
        out = operator_env / f"people-{day}.jsonl"
        argv = ["registry", "generate", "--count", "3000", "--workers", "0", "--out", str(out)]
        assert eid_server([*argv, "--as-of", day, "--seed", "5"]) == 0, capsys.readouterr()
        assert len(out.read_text(encoding="utf-8").splitlines()) == 3000


def test_an_import_stopped_with_ctrl_c_says_what_to_do_and_the_same_import_finishes_it(
    operator_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C mid-import (a real process, SIGINT once a batch has committed):
    exit status 130, one line saying what to do, no traceback; the same
    import run again adds the rest."""
    people = operator_env / "people.jsonl"
    people.write_text(jsonl_lines(generate(3, 20_000, TODAY)), encoding="utf-8")
    database = sqlite3.connect(operator_env / "eid.db")
    command = [str(Path(sys.executable).with_name("eid-server")), "registry", "import"]
    argv = [str(people), "--workers", "0", "--batch", "500"]
    with subprocess.Popen(
        ctrl_c_restored([*command, *argv]),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as importing:

        def some_written() -> bool:
            with contextlib.suppress(sqlite3.OperationalError):  # a commit under way
                count: int = database.execute("SELECT count(*) FROM registry_citizens").fetchone()[
                    0
                ]
                return count > 0
            return False

        assert until(some_written, 60), "the import wrote nothing"
        importing.send_signal(signal.SIGINT)
        output, _ = importing.communicate(timeout=60)
    written = database.execute("SELECT count(*) FROM registry_citizens").fetchone()[0]
    database.close()
    assert importing.returncode == 130, output
    assert "Traceback" not in output
    assert "interrupted: the people written so far stay; run the same import again" in output
    assert 0 < written < 20_000, "stopped before its end"
    assert eid_server(["registry", "import", *argv]) == 0
    assert f"{20_000 - written:,} added" in capsys.readouterr().out


def test_generate_says_whom_it_refused_and_exits_1(
    operator_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A person whose document another person holds already (here: from an
    earlier import) is not written, nor are their wards, and generate says
    so. Before, the person was written without the document, counted added."""
    people = generate(5, 300, TODAY)
    holder = next(
        p
        for p in people
        if p.documents and any(p.demographics.personal_id in c.guardians for c in people)
    )
    wards = [c for c in people if holder.demographics.personal_id in c.guardians]
    stranger = next(
        p for p in generate(7, 1_000, TODAY) if p.documents and not p.guardians and p not in people
    )
    taken = RegistryPerson(
        stranger.demographics, kind=stranger.kind, documents=holder.documents[:1]
    )
    first = operator_env / "first.jsonl"
    first.write_text(jsonl_lines([taken]), encoding="utf-8")
    assert eid_server(["registry", "import", str(first), "--workers", "0"]) == 0
    capsys.readouterr()
    argv = ["registry", "generate", "--count", "300", "--seed", "5", "--workers", "0"]
    assert eid_server([*argv, "--as-of", TODAY.isoformat()]) == 1
    refused = 1 + len(wards)
    assert f"registry: {300 - refused:,} added, 0 already present, {refused:,} refused" in " ".join(
        capsys.readouterr().out.split()
    )
    database = sqlite3.connect(operator_env / "eid.db")
    try:
        count = database.execute("SELECT count(*) FROM registry_citizens").fetchone()[0]
    finally:
        database.close()
    assert count == 1 + 300 - refused


def test_an_import_killed_mid_way_leaves_whole_batches_and_the_same_import_finishes_it(
    operator_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SIGKILL (no chance to tidy up) once a batch has committed: what was
    written is whole batches (every guardian and document with its person),
    the lock is free, and the same import adds exactly the rest."""
    people = generate(4, 20_000, TODAY)
    path = operator_env / "people.jsonl"
    path.write_text(jsonl_lines(people), encoding="utf-8")
    database = sqlite3.connect(operator_env / "eid.db")

    def count(table: str) -> int:
        found: int = database.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
        return found

    def some_written() -> bool:
        with contextlib.suppress(sqlite3.OperationalError):  # a commit under way
            return count("registry_citizens") > 0
        return False

    command = [str(Path(sys.executable).with_name("eid-server")), "registry", "import"]
    argv = [str(path), "--workers", "0", "--batch", "500"]
    with subprocess.Popen(
        [*command, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as importing:
        assert until(some_written, 60), "the import wrote nothing"
        importing.kill()
    written = count("registry_citizens")
    assert 0 < written < 20_000, "killed before its end"
    orphans = database.execute(
        "SELECT count(*) FROM registry_guardians WHERE child_index NOT IN"
        " (SELECT personal_id_index FROM registry_citizens) OR guardian_index NOT IN"
        " (SELECT personal_id_index FROM registry_citizens)"
    ).fetchone()[0]
    database.close()
    assert orphans == 0
    assert eid_server(["registry", "import", *argv]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"{20_000 - written:,} added, {written:,} already present, 0 bad" in out
