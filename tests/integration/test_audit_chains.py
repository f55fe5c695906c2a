"""The audit chains on each backend: events appended through the repository,
then tampered with in raw SQL as someone with database access could, are
named at their first broken link, by the use case and by `eid-server audit
verify`; appends committing during a check are no false alarm."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from eid_service.security.field_cipher import FieldCipher
from eid_service.security.keyed_hash import KeyedHasher
from eid_service.security.keys import KeyRing, generate_key_ring, save_key_ring
from eid_service.store.protection import DataProtection
from eid_service.store.uow import SqlUnitOfWork
from eid_service.use_cases.audit_check import verify_audit_chains
from eid_service.use_cases.ports import AuditEntry, BreakKind, BrokenLink, ChainCheck, Subject

BIN = Path(sys.executable).parent
AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
OUTCOMES = ("verified", "rejected", "verified")


class Log:
    def __init__(self, url: str) -> None:
        self.url = url
        self.ring: KeyRing = generate_key_ring()
        hasher = KeyedHasher(self.ring.hmac_key)
        self.uow = SqlUnitOfWork(url, DataProtection(FieldCipher(self.ring), hasher))

    def append(self, subject: Subject, outcome: str = "verified") -> str:
        entry = AuditEntry(subject, None, None, "verify.password", outcome, AT)
        return asyncio.run(self.uow.atomically(lambda r: r.audit.append(entry)))

    def chain(self, subject: Subject) -> list[str]:
        """Three events for the subject; their ids, by seq."""
        return [self.append(subject, outcome) for outcome in OUTCOMES]

    def check(self, subject: Subject) -> ChainCheck:
        return asyncio.run(self.uow.read(lambda r: r.audit.check_chain(subject)))

    def read_value(self, sql: str, **params: Any) -> Any:
        """One value, read in raw SQL."""
        with self.uow.engine.connect() as connection:
            return connection.execute(text(sql), params).scalar_one()

    def tamper(self, sql: str, **params: Any) -> int:
        with self.uow.engine.begin() as connection:
            return connection.execute(text(sql), params).rowcount


@pytest.fixture
def log(database_url: str) -> Iterator[Log]:
    made = Log(database_url)
    try:
        yield made
    finally:
        made.uow.close()


def _subject() -> Subject:
    return secrets.token_bytes(32)


TAMPERING = {
    "edited event": (
        "UPDATE audit_events SET outcome = 'verified' WHERE subject = :s AND seq = 2",
        2,
        1,
        BreakKind.DIGEST_MISMATCH,
    ),
    "deleted middle event": (
        "DELETE FROM audit_events WHERE subject = :s AND seq = 2",
        2,
        None,
        BreakKind.SEQUENCE_GAP,
    ),
    "deleted last event": (
        "DELETE FROM audit_events WHERE subject = :s AND seq = 3",
        3,
        None,
        BreakKind.HEAD_MISMATCH,
    ),
    "edited head": (
        "UPDATE audit_chains SET head = :forged WHERE subject = :s",
        3,
        2,
        BreakKind.HEAD_MISMATCH,
    ),
    "deleted head": (
        "DELETE FROM audit_chains WHERE subject = :s",
        3,
        2,
        BreakKind.HEAD_MISMATCH,
    ),
    "edited link": (
        "UPDATE audit_events SET prev_digest = :forged WHERE subject = :s AND seq = 3",
        3,
        2,
        BreakKind.PREVIOUS_MISMATCH,
    ),
    "event renumbered": (
        "UPDATE audit_events SET seq = 0 WHERE subject = :s AND seq = 1",
        0,
        0,
        BreakKind.SEQUENCE_GAP,
    ),
}


@pytest.mark.parametrize("tampering", TAMPERING.keys())
def test_the_first_broken_link_is_named(log: Log, tampering: str) -> None:
    sql, seq, index, kind = TAMPERING[tampering]
    lan, other = _subject(), _subject()
    ids = log.chain(lan)
    log.chain(other)
    assert log.check(lan) == ChainCheck(3, None)

    assert log.tamper(sql, s=lan, forged=bytes(32)) == 1
    event_id = None if index is None else ids[index]
    assert log.check(lan).broken == BrokenLink(lan, seq, event_id, kind)
    report = asyncio.run(verify_audit_chains(log.uow, batch=1))
    assert report.broken == (BrokenLink(lan, seq, event_id, kind),)
    assert report.subjects == 2
    assert log.check(other) == ChainCheck(3, None)


def test_an_append_is_two_statements_and_moves_the_head(log: Log) -> None:
    lan = _subject()
    log.append(lan)
    seen: list[str] = []
    log.uow.observe = seen.append
    try:
        second = log.append(lan, "rejected")
    finally:
        log.uow.observe = None
    # The chain's bump and the event; the database moves the head (migration 0021).
    assert [s.split(" (")[0] for s in seen] == [
        "INSERT INTO audit_chains",
        "INSERT INTO audit_events",
    ]
    head = log.read_value("SELECT head FROM audit_chains WHERE subject = :s", s=lan)
    digest = log.read_value("SELECT digest FROM audit_events WHERE id = :i", i=second)
    assert head == digest
    assert log.check(lan) == ChainCheck(2, None)


def test_an_unknown_subject_has_an_empty_intact_chain(log: Log) -> None:
    assert log.check(_subject()) == ChainCheck(0, None)


def test_subjects_are_walked_in_pages_in_byte_order(log: Log) -> None:
    subjects = sorted(_subject() for _ in range(7))
    for s in subjects:
        log.append(s)
    log.tamper("DELETE FROM audit_chains WHERE subject = :s", s=subjects[3])

    def page(after: Subject | None, limit: int) -> list[Subject]:
        return asyncio.run(log.uow.read(lambda r: r.audit.subjects_after(after, limit)))

    assert page(None, 3) == subjects[:3]
    assert page(subjects[2], 3) == subjects[3:6]  # found by its events alone
    assert page(subjects[5], 3) == subjects[6:]
    assert page(subjects[6], 3) == []
    assert asyncio.run(log.uow.read(lambda r: r.audit.count_subjects())) == 6
    report = asyncio.run(verify_audit_chains(log.uow, batch=3))
    assert (report.subjects, report.events) == (7, 7)
    assert [b.subject for b in report.broken] == [subjects[3]]


async def _check_while_appending(log: Log, subject: Subject) -> list[bool]:
    async def appends() -> None:
        entry = AuditEntry(subject, None, None, "verify.password", "verified", AT)
        for _ in range(60):
            await log.uow.atomically(lambda r: r.audit.append(entry))

    async def checks() -> list[bool]:
        return [
            (await log.uow.read(lambda r: r.audit.check_chain(subject))).broken is None
            for _ in range(60)
        ]

    _, intact = await asyncio.gather(appends(), checks())
    return intact


def test_appends_committing_during_a_check_are_no_false_alarm(log: Log) -> None:
    subject = _subject()
    log.append(subject)
    assert all(asyncio.run(_check_while_appending(log, subject)))
    assert log.check(subject) == ChainCheck(61, None)


def _audit_verify(log: Log, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    keys = tmp_path / "keys.json"
    if not keys.exists():
        save_key_ring(log.ring, keys)
    env = {**os.environ, "EID_DATABASE_URL": log.url, "EID_KEYS_FILE": str(keys)}
    return subprocess.run(
        [str(BIN / "eid-server"), "audit", "verify", *args],
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_cli_exits_1_and_names_the_broken_link(log: Log, tmp_path: Path) -> None:
    lan = _subject()
    ids = log.chain(lan)
    log.chain(_subject())
    intact = _audit_verify(log, tmp_path)
    assert intact.returncode == 0, intact.stderr
    assert "2 subject(s), 6 event(s) checked: every audit chain is intact" in intact.stdout

    log.tamper("UPDATE audit_events SET outcome = 'verified' WHERE subject = :s AND seq = 2", s=lan)
    table = _audit_verify(log, tmp_path)
    assert table.returncode == 1
    assert lan.hex()[:12] in table.stdout and lan.hex()[:13] not in table.stdout
    assert ids[1] in table.stdout and "digest_mismatch" in table.stdout
    assert "1 chain(s) broken" in table.stdout

    machine = _audit_verify(log, tmp_path, "--json", "--batch", "1")
    assert machine.returncode == 1
    assert json.loads(machine.stdout) == {
        "intact": False,
        "subjects": 2,
        "events": 6,
        "broken": [
            {
                "subject": lan.hex()[:12],
                "seq": 2,
                "event_id": ids[1],
                "kind": "digest_mismatch",
                "explanation": "edited: its fields no longer match its digest",
            }
        ],
    }
