"""Upgrading a deployed database as an operator does: `eid-server migrate`
run twice at once (two hosts deploying), killed mid-way, or stuck behind a
transaction of a server still serving the previous version; and rows
written at an earlier revision read right after the upgrade."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import text

from eid_service.demo import demo_citizens
from eid_service.security.field_cipher import FieldCipher
from eid_service.security.keyed_hash import KeyedHasher
from eid_service.security.keys import generate_key_ring
from eid_service.store.database import create_engine, is_sqlite
from eid_service.store.migrate import alembic_config, upgrade
from eid_service.store.protection import DataProtection
from eid_service.store.repositories.audit import AUDIT_PURPOSE, _canonical
from eid_service.store.schema_version import schema_problem, shipped_revisions
from eid_service.use_cases.ports import AuditEvent
from tests.integration.harness import ServerHarness
from tests.integration.raw_sql import run_sql

HEAD = shipped_revisions().head


def _revision(url: str) -> str:
    ((version,),) = run_sql(url, "SELECT version_num FROM alembic_version")
    return str(version)


def _migrate(url: str) -> subprocess.Popen[str]:
    """`eid-server migrate` as an operator runs it, in its own process."""
    env = {**os.environ, "EID_DATABASE_URL": url}
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("eid-server")), "migrate"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _tables(url: str) -> list[str]:
    if is_sqlite(url):
        rows = run_sql(url, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    else:
        rows = run_sql(
            url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        )
    return [str(r[0]) for r in rows]


def test_two_migrates_at_once_both_end_at_head_without_an_error(
    empty_database_url: str,
) -> None:
    # Two hosts deploying at the same moment on an empty database: one
    # migrates, the other waits for it and finds nothing left to do.
    for _ in range(3):
        runs = [_migrate(empty_database_url) for _ in range(3)]
        outcomes = [(run.wait(timeout=120), *run.communicate()) for run in runs]
        for code, out, err in outcomes:
            assert (code, out.strip().splitlines()[-1:], err) == (
                0,
                ["database schema is up to date"],
                "",
            )
        assert _revision(empty_database_url) == HEAD
        command.downgrade(alembic_config(empty_database_url), "base")


def _postgres_only(url: str) -> None:
    if is_sqlite(url):
        pytest.skip("SQLite has no table locks: its one writer waits its turn")


def _waits_on_a_lock(url: str, database: str) -> bool:
    rows = run_sql(
        url,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = :db AND wait_event_type = 'Lock'",
        {"db": database},
    )
    return bool(rows[0][0])


def _poll(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_migrate_behind_a_long_transaction_fails_fast_and_changes_nothing(
    database_url: str,
) -> None:
    # A server of the previous version (or an operator's session) keeps a
    # transaction open on the outbox, which 0022 alters: the step queues for
    # the table's lock, and every reader of the outbox queues behind it. The
    # migrate gives up within seconds, says why in words, and leaves 0021.
    _postgres_only(database_url)
    command.downgrade(alembic_config(database_url), "0021")
    engine = create_engine(database_url)
    try:
        with engine.connect() as holder:
            holder.execute(text("SELECT count(*) FROM outbox"))  # open, holding ACCESS SHARE
            started = time.monotonic()
            run = _migrate(database_url)
            code = run.wait(timeout=60)
            took = time.monotonic() - started
            out, err = run.communicate()
            holder.rollback()
    finally:
        engine.dispose()
    assert (code, err) == (1, "")
    assert "not migrated" in out and "nothing was changed" in out
    assert "cannot be reached" not in out
    assert took < 8, took  # the lock wait is 3 s; the process starts in about 1 s
    assert _revision(database_url) == "0021"
    assert _migrate(database_url).communicate(timeout=60) == ("database schema is up to date\n", "")
    assert _revision(database_url) == HEAD


def test_a_migrate_killed_mid_way_leaves_the_revision_it_started_from(
    database_url: str,
) -> None:
    # SIGKILL while the upgrade from 0019 has run 0020 and 0021 and waits in
    # 0022 (a transaction holds the outbox): nothing of it stays, servers are
    # told the schema is not current, and the next migrate does it all.
    _postgres_only(database_url)
    cfg = alembic_config(database_url)
    command.downgrade(cfg, "0019")
    database = database_url.rsplit("/", 1)[1]
    engine = create_engine(database_url)
    try:
        with engine.connect() as holder:
            holder.execute(text("SELECT count(*) FROM outbox"))
            run = _migrate(database_url)
            _poll(lambda: _waits_on_a_lock(database_url, database))
            run.send_signal(signal.SIGKILL)
            run.communicate(timeout=30)
            holder.rollback()
        _poll(lambda: not _waits_on_a_lock(database_url, database))
        assert _revision(database_url) == "0019"
        columns = run_sql(
            database_url,
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_name = 'accounts' AND column_name = 'gender_enc'",
        )
        assert columns == []  # 0020's column went with the rest
        assert schema_problem(engine) == (
            "the database schema is not current: run `eid-server migrate`"
        )
    finally:
        engine.dispose()
    assert _migrate(database_url).communicate(timeout=60) == ("database schema is up to date\n", "")
    assert _revision(database_url) == HEAD


def test_a_migrate_killed_on_sqlite_is_finished_by_the_next(tmp_path: Path) -> None:
    # Killed at several moments of an upgrade from nothing: the file is at a
    # revision we ship (or has none), never between two, and the next
    # migrate ends at head with every table.
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    upgrade(fresh)
    wanted = _tables(fresh)
    for delay in (0.6, 0.9, 1.2, 1.5):
        url = f"sqlite:///{tmp_path / f'killed-{delay}.db'}"
        run = _migrate(url)
        time.sleep(delay)  # a moment of the upgrade, not a wait for a condition
        run.send_signal(signal.SIGKILL)
        run.communicate(timeout=30)
        tables = _tables(url)
        if "alembic_version" in tables and run_sql(url, "SELECT * FROM alembic_version"):
            assert _revision(url) in shipped_revisions().revisions
        assert _migrate(url).communicate(timeout=60) == ("database schema is up to date\n", "")
        assert (_revision(url), _tables(url)) == (HEAD, wanted)


def test_an_account_and_its_audit_chain_written_at_0003_read_right_at_head(
    database_url: str,
) -> None:
    # Rows as the code of revision 0003 wrote them (its columns; sealed and
    # hashed as then): 0004 moves audit chains from accounts to subjects and
    # backfills `subject` on every event, later steps add columns to accounts.
    command.downgrade(alembic_config(database_url), "0003")
    ring = generate_key_ring()
    p = DataProtection(FieldCipher(ring), KeyedHasher(ring.hmac_key))
    citizen = demo_citizens()[0]
    account_id, ctx = "acc_old1", "account:acc_old1"
    t0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    run_sql(
        database_url,
        "INSERT INTO accounts (id, personal_id_index, personal_id_enc, full_name_enc,"
        " birth_date_enc, gender, phone_enc, level, state, password_hash, created_at,"
        " activated_at, failed_password_attempts) VALUES (:id, :index, :pid, :name, :birth,"
        " :gender, :phone, 1, 'active', NULL, :t, :t, 0)",
        {
            "id": account_id,
            "index": p.hasher.blind_index(citizen.personal_id),
            "pid": p.seal(citizen.personal_id, f"{ctx}:personal_id"),
            "name": p.seal(citizen.full_name, f"{ctx}:full_name"),
            "birth": p.seal(citizen.birth_date.isoformat(), f"{ctx}:birth_date"),
            "gender": citizen.gender.value,
            "phone": p.seal("+84912345678", f"{ctx}:phone"),
            "t": t0,
        },
    )
    prev: bytes | None = None
    for seq in (1, 2, 3):
        event = AuditEvent(f"evt_{seq}", account_id, None, "sign_in", "ok", t0, seq)
        digest = p.hasher.digest(AUDIT_PURPOSE, _canonical(event, prev))
        run_sql(
            database_url,
            "INSERT INTO audit_events (id, account_id, party_id, action, outcome, created_at,"
            " seq, prev_digest, digest) VALUES (:id, :account, NULL, 'sign_in', 'ok', :t,"
            " :seq, :prev, :digest)",
            {
                "id": event.id,
                "account": account_id,
                "t": t0,
                "seq": seq,
                "prev": prev,
                "digest": digest,
            },
        )
        prev = digest
        t0 += timedelta(seconds=1)

    upgrade(database_url)
    harness = ServerHarness(database_url, key_ring=ring).start()
    try:
        account = harness.in_uow(lambda r: r.accounts.find_by_personal_id(citizen.personal_id))
        assert account is not None
        assert (account.id, account.demographics, account.phone) == (
            account_id,
            citizen,
            "+84912345678",
        )
        subject = p.hasher.blind_index(citizen.personal_id)
        check = harness.in_uow(lambda r: r.audit.check_chain(subject))
        assert (check.events, check.broken) == (3, None)
    finally:
        harness.stop()
