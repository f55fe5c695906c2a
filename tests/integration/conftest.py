"""A running server per test, on each database kind, with the demo registry."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from eid_client.client import EidClient
from eid_service.demo import demo_citizens
from eid_service.domain.citizen import Demographics, age_on
from eid_service.domain.party import RelyingParty
from eid_service.limits import Limits
from eid_service.store.protection import DataProtection
from tests.integration.harness import ServerHarness


@pytest.fixture
def harness(database_url: str) -> Iterator[ServerHarness]:
    h = ServerHarness(database_url).start()
    h.add_citizens(demo_citizens())
    try:
        yield h
    finally:
        h.stop()


@pytest.fixture
def start_server(
    sqlite_template: Path, tmp_path: Path
) -> Iterator[Callable[[Limits], ServerHarness]]:
    """Starts servers with the limits given, on SQLite only: what the limits
    guard (connections, streams, the event loop, the hash threads) does not
    depend on the database."""
    started: list[ServerHarness] = []

    def start(limits: Limits) -> ServerHarness:
        path = tmp_path / f"eid-{len(started)}.db"
        shutil.copyfile(sqlite_template, path)
        server = ServerHarness(f"sqlite:///{path}", limits=limits).start()
        started.append(server)
        server.add_citizens(demo_citizens())
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


def _today() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def adults() -> list[Demographics]:
    today = _today().date()
    return [c for c in demo_citizens() if age_on(c.birth_date, today) >= 18]


@pytest.fixture
def adult(adults: list[Demographics]) -> Demographics:
    return adults[0]


@pytest.fixture
def child() -> Demographics:
    today = _today().date()
    return next(c for c in demo_citizens() if age_on(c.birth_date, today) < 14)


@dataclass
class Party:
    party: RelyingParty
    api_key: str
    client: EidClient


@pytest.fixture
def bank(harness: ServerHarness) -> Iterator[Party]:
    party, key = harness.create_party("Test Bank")
    with EidClient(harness.target, api_key=key) as client:
        yield Party(party, key, client)


@pytest.fixture
def citizen_app(harness: ServerHarness) -> Iterator[EidClient]:
    with EidClient(harness.target) as client:
        yield client


@pytest.fixture
def decryptions(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """How many values the in-process server has decrypted so far: work that
    must not tell an ID number with an account from one without."""
    opened = 0
    real_open = DataProtection.open

    def counted_open(self: DataProtection, blob: bytes, context: str) -> str:
        nonlocal opened
        opened += 1
        return real_open(self, blob, context)

    monkeypatch.setattr(DataProtection, "open", counted_open)
    return lambda: opened
