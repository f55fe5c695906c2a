"""What `eid-server outbox` does: list dead deliveries, and make them
pending again once whatever killed them (a gateway down for long, a wrong
password) is fixed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from eid_service.use_cases.ports import DeadLetter, Repositories, RetryOutcome, UnitOfWork

LIST_LIMIT = 1000


async def list_dead(uow: UnitOfWork, limit: int = LIST_LIMIT) -> list[DeadLetter]:
    return await uow.read(lambda r: r.outbox.dead_letters(limit))


async def retry_dead(
    uow: UnitOfWork, message_ids: Sequence[str], now: datetime
) -> dict[str, RetryOutcome]:
    """Makes the dead deliveries of these messages pending again."""
    # One lock order (by id) for every transaction that takes several messages.
    chosen = sorted(set(message_ids))

    def retry(r: Repositories) -> dict[str, RetryOutcome]:
        return {m: r.outbox.retry_dead(m, now) for m in chosen}

    return await uow.atomically(retry)


async def retry_all_dead(uow: UnitOfWork, now: datetime) -> dict[str, RetryOutcome]:
    """Retries every dead delivery that still has its contents."""
    outcomes: dict[str, RetryOutcome] = {}
    while True:
        dead = await list_dead(uow)
        batch = [d.message_id for d in dead if d.retriable and d.message_id not in outcomes]
        if not batch:
            return outcomes
        outcomes.update(await retry_dead(uow, batch, now))
