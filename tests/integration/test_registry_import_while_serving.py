"""`eid-server registry import` (a real process) while a real server answers
Register on the same database: SQLite's writers take turns through the
cross-process lock, PostgreSQL's run side by side. Both finish, nobody is
lost or doubled, and Register finds a person imported mid-way as soon as
their batch is committed (before it, the same REGISTRY_MISMATCH as anyone
not in the registry)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from eid_client.client import EidClient
from eid_client.errors import EidError
from eid_client.retry import RetryPolicy
from eid_service.demo import demo_citizens
from eid_service.domain.citizen import Demographics, age_on
from eid_service.domain.registry_person import PersonKind, RegistryPerson
from eid_service.registry_tools.generator import generate
from eid_service.registry_tools.records import jsonl_lines
from eid_service.security.keys import save_key_ring
from eid_service.use_cases.ports import Repositories
from tests.integration.flows import phone_of, register
from tests.integration.harness import ServerHarness
from tests.polling import until

PEOPLE = 12_000
BATCH = 1_000  # a dozen commits: Register sees the registry grow
# Register calls taken from the file's whole length, the last row included.
WATCHED = 12


def _watched(people: list[RegistryPerson], today: datetime) -> list[RegistryPerson]:
    """Citizens old enough to register themselves, spread over the file."""
    adults = [
        p
        for p in people
        if p.kind is PersonKind.CITIZEN
        and p.portrait is not None
        and age_on(p.demographics.birth_date, today.date()) >= 18
    ]
    step = len(adults) // (WATCHED - 1)
    return [*adults[::step][: WATCHED - 1], adults[-1]]


def _find(server: ServerHarness, personal_id: str) -> Demographics | None:
    def read(r: Repositories) -> Demographics | None:
        return r.registry.find(personal_id)

    return server.in_uow(read)


def _register(app: EidClient, person: RegistryPerson) -> str:
    """'ok', or the status and reason Register answered."""
    assert person.portrait is not None
    try:
        register(app, person.demographics, portrait=person.portrait.packed)
    except EidError as refused:
        return f"{refused.code.name} {refused.reason}"
    return "ok"


def test_register_finds_people_as_an_import_commits_them_and_nothing_is_lost(
    harness: ServerHarness, database_url: str, tmp_path: Path
) -> None:
    server = harness
    today = datetime.now(UTC)
    people = generate(11, PEOPLE, today.date())
    watched = _watched(people, today)
    path = tmp_path / "people.jsonl"
    path.write_text(jsonl_lines(people), encoding="utf-8")
    keys = tmp_path / "keys.json"
    save_key_ring(server.key_ring, keys)
    env = {
        **os.environ,
        "EID_DATABASE_URL": database_url,
        "EID_KEYS_FILE": str(keys),
        "COLUMNS": "200",
    }
    command = [str(Path(sys.executable).with_name("eid-server")), "registry", "import"]
    argv = [str(path), "--workers", "1", "--batch", str(BATCH)]
    registered: dict[str, bool] = {}  # ID number: whether while the import ran
    demo = [c for c in demo_citizens() if age_on(c.birth_date, today.date()) >= 18][:4]
    log = tmp_path / "import.log"
    # No retries: an UNAVAILABLE or a deadline while the import holds the
    # database is what this test looks for.
    with EidClient(server.target, retry=RetryPolicy.off()) as app, log.open("w") as out:
        started = time.monotonic()
        with subprocess.Popen(
            [*command, *argv], env=env, stdout=out, stderr=subprocess.STDOUT, text=True
        ) as importing:
            try:
                # Demo citizens, in the registry all along, register mid-import.
                for citizen in demo:
                    register(app, citizen)
                while importing.poll() is None:
                    assert time.monotonic() - started < 300, "the import did not finish"
                    for person in watched:
                        pid = person.demographics.personal_id
                        if pid in registered:
                            continue
                        committed = _find(server, pid) is not None
                        answer = _register(app, person)
                        if answer == "ok":
                            registered[pid] = importing.poll() is None
                        else:
                            assert answer == "FAILED_PRECONDITION REGISTRY_MISMATCH"
                            assert not committed, "committed, yet Register did not find them"
            finally:
                if importing.poll() is None:
                    importing.kill()
                importing.wait(60)
        # The import is over: whoever is left registers now.
        left = [p for p in watched if p.demographics.personal_id not in registered]
        assert [_register(app, p) for p in left] == ["ok"] * len(left)
    output = log.read_text(encoding="utf-8")
    assert importing.returncode == 0, output
    assert f"{PEOPLE:,} added, 0 already present, 0 bad" in " ".join(output.split()), output
    # Some were found mid-way, not all at the end.
    assert any(registered.values()), "nobody registered while the import ran"
    in_registry = PEOPLE + len(demo_citizens())
    rows = server.rows("SELECT count(*), count(DISTINCT personal_id_index) FROM registry_citizens")
    assert rows == [(in_registry, in_registry)]
    accounts = server.rows("SELECT count(*), count(DISTINCT personal_id_index) FROM accounts")
    assert accounts == [(len(watched) + len(demo), len(watched) + len(demo))]
    # One activation SMS each, to the phone given (sent on the server's time).
    expected = sorted(
        [phone_of(p.demographics)[1] for p in watched] + [phone_of(c)[1] for c in demo]
    )

    def phones() -> list[str]:
        return sorted(m.destination for m in server.sender.messages if m.channel == "sms")

    assert until(lambda: phones() == expected, 10), phones()
