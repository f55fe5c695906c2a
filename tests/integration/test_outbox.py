"""The transactional outbox: a message is sent once, retried after a failed
send, and keeps no copy of its contents once delivered."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import text

from eid_service.notify.dispatcher import CLAIM_FOR, OutboxDispatcher
from eid_service.security.field_cipher import FieldCipher
from eid_service.security.keyed_hash import KeyedHasher
from eid_service.security.keys import generate_key_ring
from eid_service.store.protection import DataProtection
from eid_service.store.uow import SqlUnitOfWork
from eid_service.domain.notices import Notice, NoticeKind
from eid_service.use_cases.ports import OutgoingMessage
from tests.integration.harness import FakeClock, RecordingSender


class FlakySender(RecordingSender):
    """Fails its first `failures` sends, like an SMS gateway that is down."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def send(self, message: OutgoingMessage) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("gateway down")
        await super().send(message)


async def _scenario(url: str) -> tuple[list[int], list[str], list[tuple[object, ...]]]:
    ring = generate_key_ring()
    uow = SqlUnitOfWork(url, DataProtection(FieldCipher(ring), KeyedHasher(ring.hmac_key)))
    clock = FakeClock()
    sender = FlakySender(failures=1)
    first_worker = OutboxDispatcher(uow, [sender], clock)
    second_worker = OutboxDispatcher(uow, [sender], clock)
    try:
        notice = Notice(NoticeKind.ACTIVATION_CODE, "subject", "code 123456")
        await uow.atomically(lambda r: r.outbox.add("sms", "+84912345678", notice, clock()))
        sent = [await first_worker.deliver_pending()]  # the gateway fails
        sent.append(await second_worker.deliver_pending())  # still claimed: not resent yet
        clock.advance(CLAIM_FOR + timedelta(seconds=1))
        sent.append(await second_worker.deliver_pending())  # the claim lapsed: retried
        sent.append(await first_worker.deliver_pending())  # nothing left
        with uow.engine.connect() as connection:
            rows = connection.execute(
                text("SELECT destination_enc, body_enc, attempts FROM outbox")
            ).all()
        return sent, [m.body for m in sender.messages], [tuple(r) for r in rows]
    finally:
        uow.close()


def test_failed_send_is_retried_once_the_claim_lapses(database_url: str) -> None:
    sent, bodies, rows = asyncio.run(_scenario(database_url))
    assert sent == [0, 0, 1, 0]
    assert bodies == ["code 123456"]
    assert rows == [(None, None, 2)]
