"""Set-up shared by the outbox tests: a store, a clock, senders that fail on
cue, and a look at the stored rows."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import text

from eid_service.domain.notices import Language, NoticeKind, code_notice, state_notice
from eid_service.notify.failures import DeliveryFailed, Undeliverable
from eid_service.notify.settings import DeliverySettings
from eid_service.security.field_cipher import FieldCipher
from eid_service.security.keyed_hash import KeyedHasher
from eid_service.security.keys import KeyRing, generate_key_ring
from eid_service.store.protection import DataProtection
from eid_service.store.uow import SqlUnitOfWork
from eid_service.use_cases.ports import OutgoingMessage
from tests.integration.harness import FakeClock, RecordingSender

PHONE = "+84912345678"
EMAIL = "lan@example.vn"
# Fast enough to run through in a test, slow enough that nothing is due twice by accident.
FAST = DeliverySettings(
    max_attempts=3, retry_base_seconds=10, retry_max_seconds=60, claim_seconds=30
)
LATER = timedelta(minutes=5)  # past any retry delay and claim of FAST


@dataclass
class FlakySender(RecordingSender):
    """Fails its first `failures` sends (forever with -1), like a gateway that is down."""

    failures: int = 0
    permanent: bool = False
    calls: int = 0

    async def send(self, message: OutgoingMessage) -> None:
        self.calls += 1
        if self.failures != 0:
            self.failures -= 1
            raise Undeliverable("HTTP 400") if self.permanent else DeliveryFailed("HTTP 503")
        await super().send(message)


@dataclass
class Store:
    uow: SqlUnitOfWork
    ring: KeyRing
    clock: FakeClock = field(default_factory=FakeClock)

    async def add(self, channel: str = "sms", kind: NoticeKind = NoticeKind.ACTIVATION_CODE) -> str:
        destination = PHONE if channel == "sms" else EMAIL
        notice = (
            code_notice(kind, "123456", timedelta(minutes=10), Language.VIETNAMESE)
            if kind.value.endswith("_code")
            else state_notice(kind, Language.VIETNAMESE)
        )
        return await self.uow.atomically(
            lambda r: r.outbox.add(channel, destination, notice, self.clock())
        )

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with self.uow.engine.connect() as connection:
            return [tuple(r) for r in connection.execute(text(sql)).all()]

    def contents(self, message_id: str) -> tuple[bool, bool]:
        """Whether the destination and the text are still stored."""
        ((destination, body),) = self.rows(
            f"SELECT destination_enc, body_enc FROM outbox WHERE id = '{message_id}'"  # noqa: S608
        )
        return destination is not None, body is not None

    def deliveries(self, message_id: str) -> dict[str, tuple[str, int]]:
        query = f"SELECT sender, state, attempts FROM outbox_deliveries WHERE message_id = '{message_id}'"  # noqa: S608, E501
        rows = self.rows(query)
        return {sender: (state, attempts) for sender, state, attempts in rows}


def open_store(url: str, ring: KeyRing | None = None) -> SqlUnitOfWork:
    key_ring = ring or generate_key_ring()
    return SqlUnitOfWork(url, DataProtection(FieldCipher(key_ring), KeyedHasher(key_ring.hmac_key)))


@contextmanager
def store(url: str) -> Iterator[Store]:
    ring = generate_key_ring()
    uow = open_store(url, ring)
    try:
        yield Store(uow, ring)
    finally:
        uow.close()
